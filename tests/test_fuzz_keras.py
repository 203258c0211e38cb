"""Hostile Keras files (tests/_fuzz_keras.py: .keras zips, Keras 3 .weights.h5 and legacy .h5, written by h5py
with lying structure): read or refused with hts.ModelFileError naming the file, nothing else, allocation bounded
by the file's size. The long run is bench/fuzz_keras.py."""

from __future__ import annotations

import os
import random
import tracemalloc

import _fuzz_check
import pytest
from _fuzz_gguf import HypothesisSource, RandomSource
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("h5py")
import _fuzz_keras  # noqa: E402

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def write(folder, files: dict):
    for old in folder.iterdir():
        old.unlink()
    for name, blob in files.items():
        (folder / name).write_bytes(blob)
    return folder / next(iter(files)), sum(len(b) for b in files.values())


#: Each input is listed by a forked child of hts's HDF5 fork server (~30 ms): a thousand here, the long run in
#: bench/.
@settings(max_examples=1000, **SETTINGS)
@given(data=st.data())
def test_structure_aware_fuzz(tmp_path, data):
    path, _ = write(tmp_path, _fuzz_keras.hostile_keras(HypothesisSource(data.draw)))
    _fuzz_check.check(path)


def test_seeded_inputs_reach_both_outcomes_with_bounded_allocation(tmp_path):
    rng = random.Random(14)
    outcomes = {"read": 0, "refused": 0}
    tracemalloc.start()
    try:
        for _ in range(1000):
            path, size = write(tmp_path, _fuzz_keras.hostile_keras(RandomSource(rng)))
            outcomes[_fuzz_check.check_bounded(path, _fuzz_keras.WIDEN, size=size)] += 1
    finally:
        tracemalloc.stop()
    assert outcomes["read"] > 200 and outcomes["refused"] > 30, outcomes


def test_a_file_that_crashes_the_hdf5_library_is_refused_not_fatal():
    """A byte-flipped .weights.h5 found by bench/fuzz_keras.py: reading one of its attributes makes HDF5 2.0
    (h5py 3.16) segfault. hts lists HDF5 files in a child process, so only that child dies and the caller gets
    a ModelFileError naming the file (with another HDF5 build it may be refused for another reason)."""
    import hts

    path = os.path.join(os.path.dirname(__file__), "..", "bench", "results", "fuzz_keras_hdf5_segfault.weights.h5")
    with pytest.raises(hts.ModelFileError, match="fuzz_keras_hdf5_segfault"):
        hts.open(path)
