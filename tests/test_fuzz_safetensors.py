"""Fuzzing hts's safetensors reader in CI: a few thousand generated hostile files (tests/_fuzz_safetensors.py)
each read or refused with ``hts.ModelFileError``, no other exception, no hang, bounded allocation. The long
run (>= 100,000 inputs, optionally coverage-guided with atheris) is bench/fuzz_safetensors.py."""

from __future__ import annotations

import random
import tracemalloc
import types

import _fuzz_safetensors as fuzz
import _st_writer as writer
import pytest

import hts
from hts.adapters.safetensors_file import read_header


@pytest.mark.parametrize("seed", [1, 2])
def test_generated_hostile_files(tmp_path, seed):
    result = fuzz.run(1500, seed, str(tmp_path / "fuzz.safetensors"))
    assert result["read"] + result["refused"] == 1500
    assert result["read"] > 50 and result["refused"] > 500  # the generator reaches both outcomes


def test_generator_is_deterministic():
    corpus = fuzz.seeds()
    a = [fuzz.mutate(random.Random(5), corpus) for _ in range(3)]
    b = [fuzz.mutate(random.Random(5), corpus) for _ in range(3)]
    assert a == b


@pytest.mark.parametrize("shape", [[10**20, 0], [2**62, 2**62, 0], [2**61, 0]])
def test_huge_shape_with_a_zero_dimension_is_refused(tmp_path, shape):
    """Found by the fuzzer: zero bytes of data, but a shape numpy cannot hold (it raised OverflowError)."""
    path = tmp_path / "z.safetensors"
    path.write_bytes(writer.encode({"w.weight": {"dtype": "F32", "shape": shape, "data_offsets": [0, 0]}}, b""))
    with pytest.raises(hts.ModelFileError, match="too large"):
        read_header(path)


def test_the_check_itself_fails_on_a_non_model_file_error(tmp_path, monkeypatch):
    """The harness is not vacuous: an unexpected exception or allocation is reported."""
    blob = fuzz.seeds()[0]

    def broken(path):
        raise KeyError("boom")

    tracemalloc.start()
    try:
        assert fuzz.check(str(tmp_path / "ok.safetensors"), blob) == "read"
        monkeypatch.setattr(fuzz, "read_header", broken)
        with pytest.raises(AssertionError, match="KeyError"):
            fuzz.check(str(tmp_path / "ok.safetensors"), blob)
        monkeypatch.setattr(fuzz, "read_header",
                            lambda p: types.SimpleNamespace(tensors={}, junk=bytearray(fuzz.SLACK + 10 * len(blob))))
        with pytest.raises(AssertionError, match="allocated"):
            fuzz.check(str(tmp_path / "ok.safetensors"), blob, analyze=False)
    finally:
        tracemalloc.stop()
