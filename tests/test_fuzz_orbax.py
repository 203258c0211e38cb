"""Hostile Orbax checkpoint folders (tests/_fuzz_orbax.py): read or refused with hts.ModelFileError naming the
folder (or a file in it), nothing else, allocation bounded by the folder's size. The long run is
bench/fuzz_orbax.py."""

from __future__ import annotations

import os
import random
import shutil
import tracemalloc

import pytest

pytest.importorskip("zstandard")

import _fuzz_check  # noqa: E402
import _fuzz_orbax  # noqa: E402
from _fuzz_gguf import HypothesisSource, RandomSource  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _write(root, files: dict) -> tuple[str, int]:
    shutil.rmtree(root, ignore_errors=True)
    for name, blob in files.items():
        target = os.path.join(root, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not name.endswith("/"):
            with open(target, "wb") as f:
                f.write(blob)
    return os.path.join(root, next(iter(files)).rstrip("/")), sum(len(b) for b in files.values())


@settings(max_examples=300, **SETTINGS)
@given(data=st.data())
def test_structure_aware_fuzz(tmp_path, data):
    path, _ = _write(tmp_path / "h", _fuzz_orbax.hostile_orbax(HypothesisSource(data.draw)))
    _fuzz_check.check(path)


def test_seeded_inputs_reach_both_outcomes_with_bounded_allocation(tmp_path):
    rng = random.Random(14)
    outcomes = {"read": 0, "refused": 0}
    tracemalloc.start()
    try:
        for _ in range(600):
            path, size = _write(tmp_path / "s", _fuzz_orbax.hostile_orbax(RandomSource(rng)))
            outcomes[_fuzz_check.check_bounded(path, _fuzz_orbax.WIDEN, size=size,
                                                             per_tensor=_fuzz_orbax.PER_TENSOR)] += 1
    finally:
        tracemalloc.stop()
    assert outcomes["read"] > 80 and outcomes["refused"] > 80, outcomes
