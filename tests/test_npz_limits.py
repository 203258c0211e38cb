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
