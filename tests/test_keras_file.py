"""Keras reader: real .keras / .h5 / .weights.h5 files written by Keras 3 on the torch backend (no TensorFlow)."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("h5py")
os.environ.setdefault("KERAS_BACKEND", "torch")
pytest.importorskip("torch")
keras = pytest.importorskip("keras")

from hts import ModelFileError
from hts.adapters.files import read_file
from hts.adapters.keras_file import from_keras


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    if keras.backend.backend() != "torch":
        pytest.skip("keras is not on the torch backend")
    import warnings

    with warnings.catch_warnings():  # keras 3.15's torch backend trips numpy 2's __array__(copy=) deprecation
        warnings.simplefilter("ignore")
        return _save(tmp_path_factory.mktemp("keras"))


def _save(d):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((12,), dtype="int32"), keras.layers.Embedding(60, 16, name="emb"),
        keras.layers.Conv1D(20, 3, name="c1d"), keras.layers.Reshape((10, 20, 1)),
        keras.layers.Conv2D(24, 3, name="c2d"), keras.layers.BatchNormalization(name="bn"),
        keras.layers.Flatten(), keras.layers.Dense(40, name="fc"), keras.layers.Dense(7, name="head")])
    model.save(str(d / "m.keras"))
    model.save(str(d / "m.h5"))
    model.save_weights(str(d / "m.weights.h5"))
    weights = {"/".join(v.path.split("/")[-2:]): np.asarray(keras.ops.convert_to_numpy(v)) for v in model.weights}
    return d, weights


def test_keras3_archive_types_orientations_and_values(saved):
    d, weights = saved
    ts = from_keras(str(d / "m.keras"))
    assert [(t.longname, t.layer_type, t.orientation) for t in ts] == [
        ("emb", "embedding", "out_in"), ("c1d", "conv1d", "out_in_k"), ("c2d", "conv2d", "kh_kw_in_out"),
        ("fc", "dense", "in_out"), ("head", "dense", "in_out")]
    by = {t.longname: t for t in ts}
    np.testing.assert_array_equal(by["emb"].load(), weights["emb/embeddings"])
    np.testing.assert_array_equal(by["c1d"].load(), weights["c1d/kernel"].transpose(2, 1, 0))
    assert by["c1d"].shape == (20, 16, 3)
    np.testing.assert_array_equal(by["c2d"].load(), weights["c2d/kernel"])
    np.testing.assert_array_equal(by["fc"].load(), weights["fc/kernel"])
    assert by["c2d"].groups == 1 and [t.layer_id for t in ts] == [1, 2, 3, 4, 5]
    assert [t.longname for t in read_file(str(d / "m.keras"))] == [t.longname for t in ts]


@pytest.mark.parametrize("name", ["m.h5", "m.weights.h5"])
def test_legacy_h5_and_weights_file_give_the_same_values(saved, name):
    d, _ = saved
    ref = {t.longname: t.load() for t in from_keras(str(d / "m.keras"))}
    ts = from_keras(str(d / name))
    got = {t.longname: t.load() for t in ts if not t.skip_reason}
    common = set(ref) & set(got)
    assert {"fc", "head", "c2d"} <= common
    for k in common:
        np.testing.assert_array_equal(got[k], ref[k])
    if name == "m.h5":
        assert {t.longname: t.layer_type for t in ts}["emb"] == "embedding"


def test_alpha_equals_the_same_kernels_analysed_as_arrays(saved):
    import hts

    d, weights = saved
    a = {r["longname"]: r for r in hts.analyze(str(d / "m.keras")).analysed}
    b = hts.analyze({"fc.weight": weights["fc/kernel"]}).analysed[0]
    assert abs(a["fc"]["alpha"] - b["alpha"]) <= 1e-12
    assert abs(a["fc"]["log_norm"] - b["log_norm"]) <= 1e-12


def test_truncated_or_garbage_files_name_the_file(saved, tmp_path):

    d, _ = saved
    for src in ("m.keras", "m.h5"):
        _fuzz_truncations((d / src).read_bytes(), tmp_path / ("t" + src[1:]))
    bad = tmp_path / "x.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    with pytest.raises(ModelFileError, match="x.h5"):
        from_keras(str(bad))


def _fuzz_truncations(data: bytes, p) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.integers(0, len(data) - 1))
    def run(cut):
        p.write_bytes(data[:cut])
        try:
            for t in from_keras(str(p)):
                t.load()
        except ModelFileError as err:
            assert str(p) in str(err)

    run()


def test_a_file_removed_or_rewritten_after_listing_is_refused_by_name(saved, tmp_path):
    import shutil

    d, _ = saved
    for way in ("removed", "rewritten"):
        path = tmp_path / f"{way}.keras"
        shutil.copy(d / "m.keras", path)
        ts = from_keras(str(path))
        if way == "removed":
            path.unlink()
            match = "cannot read it"
        else:
            path.write_bytes(path.read_bytes() + b"\0")
            match = "changed since it was listed"
        with pytest.raises(ModelFileError, match=match) as err:
            ts[0].load()
        assert str(path) in str(err.value)


def _lie_about_compressed_size(data: bytes, member: bytes, claimed: int) -> bytes:
    """The archive with the central-directory entry of ``member`` claiming ``claimed`` compressed bytes."""
    import struct

    at = data.index(b"PK\x01\x02")
    while at >= 0:
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46:at + 46 + name_len] == member:
            return data[:at + 20] + struct.pack("<I", claimed) + data[at + 24:]
        at = data.find(b"PK\x01\x02", at + 4)
    raise AssertionError(f"{member!r} not in the archive")


def test_a_zip_member_claiming_more_bytes_than_the_archive_is_refused_before_reading(saved, tmp_path):
    import tracemalloc

    d, _ = saved
    path = tmp_path / "lying.keras"  # found by bench/fuzz_keras.py: 33 MB allocated for an 18 KB file
    path.write_bytes(_lie_about_compressed_size((d / "m.keras").read_bytes(), b"config.json", 2**25))
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match="claims 33554432 stored bytes"):
            from_keras(str(path))
        assert tracemalloc.get_traced_memory()[1] < 4 * 2**20
    finally:
        tracemalloc.stop()
