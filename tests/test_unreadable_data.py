"""Issue 19 items 1, 3 and 10: compressed zip checkpoints are read correctly (never memory-mapped as if stored),
unreadable tensor data is a failed row naming the file, and the command line then exits 1."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import numpy as np
import pytest

import hts

torch = pytest.importorskip("torch")


def _rezip(src, dst, compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression=compression) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))


def _state(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {f"layers.{i}.weight": torch.distributions.StudentT(3.0).sample((96, 48)) for i in range(3)} | {
        "extra.weight": torch.randn(80, 40, generator=g)}


def test_deflated_zip_checkpoint_gives_the_same_numbers(tmp_path):
    torch.manual_seed(0)
    state = _state()
    plain, deflated = tmp_path / "plain.pt", tmp_path / "deflated.pt"
    torch.save(state, plain)
    _rezip(plain, deflated)
    with zipfile.ZipFile(deflated) as z:
        assert any(i.compress_type == zipfile.ZIP_DEFLATED for i in z.infolist())
    a, b = hts.analyze(str(plain)), hts.analyze(str(deflated))
    assert [r["status"] for r in b.rows] == ["success"] * 4
    for ra, rb in zip(a.rows, b.rows):
        assert ra["key"] == rb["key"] and ra["alpha"] == rb["alpha"] and ra["log_norm"] == rb["log_norm"]
    assert b.summary == a.summary == hts.analyze(state).summary


def test_other_compression_and_bombs_are_refused(tmp_path):
    plain = tmp_path / "plain.pt"
    torch.save({"w": torch.randn(64, 32)}, plain)
    _rezip(plain, tmp_path / "bz.pt", zipfile.ZIP_BZIP2)
    with pytest.raises(hts.ModelFileError, match="compression method 12"):
        hts.open(tmp_path / "bz.pt")
    # a zip whose deflated member declares far more than the file could hold: refused before inflating
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(plain) as zin, zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))
        zout.writestr("bomb/data/huge", b"\0" * (200 * 2**20))
    with pytest.raises(hts.ModelFileError, match="decompression bomb"):
        hts.open(bomb)


def _corrupt_npz(path, tmp_path):
    rng = np.random.default_rng(0)
    np.savez_compressed(path, good=rng.standard_t(3, size=(96, 48)), bad=rng.standard_t(3, size=(96, 48)))
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("bad.npy")
    # the member's data starts after its 30-byte local header, name and extra field; corrupt the middle of it
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    mid = start + info.compress_size // 2
    data[mid:mid + 64] = bytes(64)
    path.write_bytes(bytes(data))


def test_corrupt_npz_member_is_one_failed_row(tmp_path):
    path = tmp_path / "m.npz"
    _corrupt_npz(path, tmp_path)
    a = hts.analyze(str(path))
    rows = {r["key"]: r for r in a.rows}
    assert rows["good"]["status"] == "success"
    assert rows["bad"]["status"] == "failed" and str(path) in rows["bad"]["reason"]
    assert [r["key"] for r in a.unreadable] == ["bad"]
    failed_fit = hts.analyze({"w": np.eye(30)})  # a fit that fails on readable data is not "unreadable"
    assert failed_fit.rows[0]["status"] == "failed" and not failed_fit.unreadable


def test_cli_exits_1_when_tensor_data_cannot_be_read(tmp_path):
    path = tmp_path / "m.npz"
    _corrupt_npz(path, tmp_path)
    for command in (["analyze", str(path)], ["report", str(path), "-o", str(tmp_path / "r.html")]):
        if command[0] == "report":
            pytest.importorskip("matplotlib")
        r = subprocess.run([sys.executable, "-m", "hts", *command], capture_output=True, text=True, timeout=300)
        assert r.returncode == 1, (command, r.stderr)
        assert "could not be read" in r.stderr and "bad" in r.stderr and str(path) in r.stderr
        assert "Traceback" not in r.stderr
    good = tmp_path / "good.npz"
    np.savez(good, w=np.random.default_rng(1).standard_t(3, size=(96, 48)))
    r = subprocess.run([sys.executable, "-m", "hts", "analyze", str(good)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr


def test_float128_is_skipped_not_an_abort(tmp_path):
    if not hasattr(np, "float128"):
        pytest.skip("no float128 on this platform")
    path = tmp_path / "wide.npz"
    rng = np.random.default_rng(2)
    np.savez(path, wide=rng.normal(size=(64, 32)).astype(np.float128), ok=rng.standard_t(3, size=(64, 32)))
    rows = {r["key"]: r for r in hts.analyze(str(path)).rows}
    assert rows["ok"]["status"] == "success"
    assert rows["wide"]["status"] == "skipped" and "float128" in rows["wide"]["reason"]
