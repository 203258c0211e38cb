"""Hostile ONNX models (tests/_fuzz_onnx.py): read or refused with hts.ModelFileError naming the file (or its
external data file), nothing else, allocation bounded by the files' size. The long run is bench/fuzz_onnx.py."""

from __future__ import annotations

import random
import tracemalloc

import _fuzz_check
import pytest
from _fuzz_gguf import HypothesisSource, RandomSource
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("onnx")
import _fuzz_onnx  # noqa: E402

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def write(folder, files: dict) -> tuple:
    """Write the model's files into ``folder``; (model path, every path an error may name, total size)."""
    for name, blob in files.items():
        (folder / name).write_bytes(blob)
    if "m.data" not in files and (folder / "m.data").exists():
        (folder / "m.data").unlink()
    return folder / "m.onnx", (str(folder / "m.data"),), sum(len(b) for b in files.values())


@settings(max_examples=800, **SETTINGS)
@given(data=st.data())
def test_structure_aware_fuzz(tmp_path, data):
    path, also, _ = write(tmp_path, _fuzz_onnx.hostile_onnx(HypothesisSource(data.draw)))
    _fuzz_check.check(path, also)


def test_seeded_inputs_reach_both_outcomes_with_bounded_allocation(tmp_path):
    rng = random.Random(14)
    outcomes = {"read": 0, "refused": 0}
    tracemalloc.start()
    try:
        for _ in range(800):
            path, also, size = write(tmp_path, _fuzz_onnx.hostile_onnx(RandomSource(rng)))
            outcomes[_fuzz_check.check_bounded(path, _fuzz_onnx.WIDEN, also=also, size=size)] += 1
    finally:
        tracemalloc.stop()
    assert outcomes["read"] > 100 and outcomes["refused"] > 20, outcomes


def test_huge_dims_next_to_a_zero_dim_are_refused(tmp_path):
    """Found by bench/fuzz_onnx.py: dims [2**62, 0, 2**62] hold no element, but numpy cannot describe the array;
    the reader must refuse it with a ModelFileError, not a ValueError from numpy."""
    import hts
    import onnx
    from onnx import helper

    t = onnx.TensorProto(name="w", data_type=onnx.TensorProto.FLOAT, dims=[2**62, 0, 2**62], raw_data=b"")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [], [], initializer=[t])
    onnx.save(helper.make_model(graph), str(tmp_path / "m.onnx"))
    with pytest.raises(hts.ModelFileError, match="too large"):
        hts.open(str(tmp_path / "m.onnx"))
