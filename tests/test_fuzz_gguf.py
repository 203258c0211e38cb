"""Hostile GGUF input: the reader answers with a ModelFileError or with data, never a crash, hang or huge
allocation; the C++ dequantiser equals the gguf package's numpy code on arbitrary bytes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import _fuzz_gguf
import _gguf_files as g
from hts._native import _core

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
NATIVE = {"Q4_0": 2, "Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8, "Q2_K": 10, "Q3_K": 11, "Q4_K": 12, "Q5_K": 13,
          "Q6_K": 14}


@settings(max_examples=2000, **SETTINGS)
@given(data=st.data())
def test_structure_aware_fuzz(tmp_path, data):
    path = tmp_path / "f.gguf"
    path.write_bytes(_fuzz_gguf.hostile_gguf(_fuzz_gguf.HypothesisSource(data.draw)))
    _fuzz_gguf.check(path)


@pytest.fixture(scope="module")
def valid_file(tmp_path_factory):
    pytest.importorskip("gguf")
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("gguf") / "valid.gguf"
    g.write(path, {"token_embd.weight": rng.standard_normal((4, 32)).astype(np.float32),
                   "blk.0.attn_q.weight": (g.random_blocks(rng, "Q4_K", 2, 256), "Q4_K"),
                   "blk.0.ffn_up_exps.weight": (g.random_blocks(rng, "Q8_0", 4, 32).reshape(2, 2, -1), "Q8_0")},
            metadata={"general.name": "fuzz"})
    return path.read_bytes()


@settings(max_examples=1000, **SETTINGS)
@given(data=st.data())
def test_mutated_real_files(tmp_path, valid_file, data):
    blob = bytearray(valid_file)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(blob) - 1))
        kind = data.draw(st.sampled_from(["byte", "u64", "cut"]))
        if kind == "byte":
            blob[at] = data.draw(st.integers(0, 255))
        elif kind == "u64":
            value = data.draw(st.sampled_from(_fuzz_gguf.U64_EDGES))
            blob[at:at + 8] = value.to_bytes(8, "little")
        else:
            del blob[at:]
            break
    path = tmp_path / "m.gguf"
    path.write_bytes(bytes(blob))
    _fuzz_gguf.check(path)


@settings(max_examples=300, **SETTINGS)
@given(type_name=st.sampled_from(sorted(NATIVE)), blocks=st.integers(1, 40), seed=st.integers(0, 2**32 - 1),
       threads=st.sampled_from([1, 2, 3]))
def test_dequantisation_matches_the_gguf_package_on_any_bytes(type_name, blocks, seed, threads):
    gguf = pytest.importorskip("gguf")
    from gguf import quants

    type_id = NATIVE[type_name]
    block, size = _core.ggml_block(type_id)
    raw = np.random.default_rng(seed).integers(0, 256, size=blocks * size, dtype=np.uint8)  # NaN/inf scales too
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = quants.dequantize(raw.reshape(blocks, size), gguf.GGMLQuantizationType[type_name]).ravel()
    out = np.empty(blocks * block, np.float32)
    _core.dequantize_ggml(type_id, raw, out, threads)
    same = (out.view(np.uint32) == ref.view(np.uint32)) | (np.isnan(out) & np.isnan(ref))
    assert same.all()


def test_dequantiser_rejects_bad_sizes_and_dtypes():
    out = np.empty(32, np.float32)
    with pytest.raises(ValueError, match="whole number"):
        _core.dequantize_ggml(2, np.zeros(17, np.uint8), out, 1)
    with pytest.raises(ValueError, match="hold 32 values, not 64"):
        _core.dequantize_ggml(2, np.zeros(18, np.uint8), np.empty(64, np.float32), 1)
    with pytest.raises(ValueError, match="not decoded here"):
        _core.dequantize_ggml(16, np.zeros(66, np.uint8), np.empty(256, np.float32), 1)
    with pytest.raises(TypeError):
        _core.dequantize_ggml(2, np.zeros(18, np.int8), out, 1)
    with pytest.raises(TypeError):
        _core.dequantize_ggml(2, np.zeros(18, np.uint8), np.empty(32, np.float64), 1)
    with pytest.raises(ValueError, match="read-only"):
        ro = np.empty(32, np.float32)
        ro.flags.writeable = False
        _core.dequantize_ggml(2, np.zeros(18, np.uint8), ro, 1)


def test_huge_dims_next_to_a_zero_dim_are_refused():
    """Found by test_mutated_real_files: dims [32, 2**56 + 2, 0] hold no element, but numpy cannot even make an
    empty array of that nominal size; the header check must refuse it (ModelFileError, not ValueError)."""
    import hts
    from hts.adapters.gguf_format import _check_tensor

    with pytest.raises(hts.ModelFileError, match="too large|too many"):
        _check_tensor("m.gguf", "blk.0.ffn_up_exps.weight", (32, 2**56 + 2, 0), 8, 0, 32, 352, 1312)
    assert _check_tensor("m.gguf", "empty", (32, 4, 0), 0, 0, 32, 352, 1312).nbytes == 0
