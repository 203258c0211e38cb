"""Files hts refuses in one clear line, before torch sees them (issue 19 item 11): TorchScript archives and
protocol-4/5 pickles (no torch warning on stderr: the suite turns warnings into errors, and the CLI runs are
checked line by line); non-UTF-8 file names are analysed and named in errors."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import _st_writer as writer
import hts

torch = pytest.importorskip("torch")


def cli(*args: str | bytes) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hts", "analyze", *args], capture_output=True, text=True,
                          errors="backslashreplace")


def test_a_torchscript_archive_is_refused_in_one_line(tmp_path):
    path = tmp_path / "scripted.pt"
    with pytest.warns(DeprecationWarning):  # torch's own warning when the test writes the archive
        torch.jit.script(torch.nn.Linear(30, 20)).save(str(path))
    with pytest.raises(hts.ModelFileError, match="TorchScript archive"):
        hts.analyze(str(path))
    out = cli(str(path))
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [f"hts: error: {path}: a TorchScript archive (torch.jit.save), not a "
                                               "state-dict checkpoint: hts does not load TorchScript; save "
                                               "model.state_dict() with torch.save and analyse that"]


@pytest.mark.parametrize("zipped", [True, False])
@pytest.mark.parametrize("protocol", [4, 5])
def test_protocol_4_and_5_pickles_are_refused_in_one_line(tmp_path, zipped, protocol):
    path = tmp_path / "p.pt"
    torch.save({"w": torch.randn(30, 20)}, path, pickle_protocol=protocol,
               _use_new_zipfile_serialization=zipped)
    with pytest.raises(hts.ModelFileError, match=f"pickle protocol {protocol}"):
        hts.analyze(str(path))
    out = cli(str(path))
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Warning" not in out.stderr and f"pickle protocol {protocol}" in lines[0]


def test_protocol_2_checkpoints_still_load(tmp_path):
    path = tmp_path / "p2.pt"
    torch.save({"w": torch.randn(60, 30)}, path, pickle_protocol=2)
    assert hts.analyze(str(path)).counts["analysed"] == 1


@pytest.mark.skipif(sys.platform != "linux", reason="byte file names")
def test_non_utf8_file_names_are_analysed_and_named_in_errors(tmp_path):
    good = os.path.join(os.fsencode(tmp_path), b"caf\xe9.safetensors")
    writer.write(good, {"w": np.random.default_rng(0).standard_t(3, size=(300, 100)).astype(np.float32)})
    name = os.fsdecode(good)  # the lone surrogate \udce9 stands for the byte 0xE9
    assert hts.analyze(name).counts["analysed"] == 1
    bad = os.path.join(os.fsencode(tmp_path), b"bro\xefken.safetensors")
    with open(bad, "wb") as f:
        f.write(b"\x00" * 4)
    with pytest.raises(hts.ModelFileError) as err:
        hts.analyze(os.fsdecode(bad))
    assert os.fsdecode(bad) in str(err.value)
    out = cli(os.fsdecode(bad))
    assert out.returncode == 1 and "bro\\udcefken.safetensors" in out.stderr and "Traceback" not in out.stderr
