"""``.npz`` members are checked against the zip directory before numpy reads them (issue 19 items 9, 10): a
decompression bomb and a header that lies about its shape are refused at once, naming the file and member,
without allocating what they claim."""

from __future__ import annotations

import io
import tracemalloc
import zipfile

import numpy as np
import pytest

import hts


def npy_bytes(header_shape: tuple, dtype: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": np.dtype(dtype).str, "fortran_order": False,
                                               "shape": header_shape})
    return buf.getvalue() + data


def test_a_decompression_bomb_is_refused_before_inflating(tmp_path):
    path = tmp_path / "bomb.npz"
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("ok.npy", npy_bytes((300, 100), "<f4", rng.standard_normal((300, 100)).astype("<f4").tobytes()))
        with z.open("w.npy", "w", force_zip64=True) as f:  # 128 MiB of zeros: ~130 kB compressed
            f.write(npy_bytes((4096, 4096), "<f8", b""))
            zero = bytes(1 << 24)
            for _ in range(8):
                f.write(zero)
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(hts.ModelFileError, match="decompression bomb") as err:
            hts.analyze(str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "bomb.npz" in str(err.value) and "'w'" in str(err.value)
    assert peak < 16 << 20


def test_a_header_claiming_a_huge_shape_is_refused_without_allocating_it(tmp_path):
    path = tmp_path / "liar.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("w.npy", npy_bytes((100_000, 100_000), "<f8", bytes(64)))  # claims 80 GB, holds 64 bytes
    with pytest.raises(hts.ModelFileError, match=r"declares shape \(100000, 100000\) float64 \(80000000000 bytes\) "
                                                 r"but the member holds 64") as err:
        hts.analyze(str(path))
    assert "liar.npz" in str(err.value)


def test_ordinary_compressed_npz_files_still_load(tmp_path):
    path = tmp_path / "fine.npz"
    rng = np.random.default_rng(1)
    np.savez_compressed(path, a=rng.standard_t(3, size=(300, 100)), b=np.zeros((64, 64), np.float32))
    result = hts.analyze(str(path))
    assert result.counts["analysed"] + result.counts["failed"] == 2


@pytest.mark.parametrize("weight_keys", [True, False])
def test_listing_is_the_state_dict_rules_made_on_use(tmp_path, weight_keys):
    """``from_npz`` holds its listing as columns and makes each record when used: the records are those of
    ``from_entries`` on the members (ids, types, skips, the ``.weight`` rule), with a list's indexing."""
    from hts.adapters.mapping import Entry, from_entries
    from hts.adapters.numpy_files import _dtype_skip, from_npz

    suffix = ".weight" if weight_keys else ""
    arrays = {f"a{suffix}": np.ones((3, 4), np.float32), "a.bias": np.ones(4, np.float32),
              f"conv{suffix}": np.ones((2, 3, 3, 3), np.float16), f"idx{suffix}": np.arange(6).reshape(2, 3),
              f"v{suffix}": np.ones(5)}
    path = tmp_path / "m.npz"
    np.savez(path, **arrays)
    want = from_entries([Entry(k, a.shape, a.dtype.name, None, _dtype_skip(a.dtype.name)) for k, a in arrays.items()],
                        source="npz")
    got = from_npz(path)
    assert list(got) == want and len(got) == len(want)
    assert got[-1] == want[-1] and got[1:3] == want[1:3]
    with pytest.raises(IndexError):
        got[len(want)]
    for t in got:
        if not t.skip_reason:
            np.testing.assert_array_equal(t.load(), arrays[t.key])
