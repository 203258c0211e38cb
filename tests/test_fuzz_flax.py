"""Hostile Flax msgpack checkpoints (tests/_fuzz_flax.py): read or refused with hts.ModelFileError naming the
file, nothing else, allocation bounded by the file's size. The long run is bench/fuzz_flax.py."""

from __future__ import annotations

import random
import tracemalloc

import _fuzz_check
import _fuzz_flax
from _fuzz_gguf import HypothesisSource, RandomSource
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@settings(max_examples=600, **SETTINGS)
@given(data=st.data())
def test_structure_aware_fuzz(tmp_path, data):
    path = tmp_path / "f.msgpack"
    path.write_bytes(_fuzz_flax.hostile_flax(HypothesisSource(data.draw)))
    _fuzz_check.check(path)


def test_seeded_inputs_reach_both_outcomes_with_bounded_allocation(tmp_path):
    rng = random.Random(14)
    path = tmp_path / "f.msgpack"
    outcomes = {"read": 0, "refused": 0}
    tracemalloc.start()
    try:
        for _ in range(1000):
            path.write_bytes(_fuzz_flax.hostile_flax(RandomSource(rng)))
            outcomes[_fuzz_check.check_bounded(path, _fuzz_flax.WIDEN)] += 1
    finally:
        tracemalloc.stop()
    assert outcomes["read"] > 100 and outcomes["refused"] > 100, outcomes
