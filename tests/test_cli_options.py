"""Issue 18 items 7, 9-12: every hts.analyze option on the command line (one shared group for analyze, report,
compare, serve and zoo), one layer filter for API and CLI, failing fast before a long run, progress=True."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import hts
from hts.selection import parse_layer_filter, select


def run(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "hts", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("opts") / "m.npz"
    np.savez(path, **{"a.weight": rng.standard_t(3, size=(200, 100)), "b.weight": rng.standard_t(3, size=(150, 90)),
                      "lm_head.weight": rng.standard_t(4, size=(300, 100)), "tiny.weight": rng.normal(size=(5, 3))})
    return path


ANALYZE_OPTIONS = ["--layers", "--pool", "--no-pool", "--conv-method", "--conv-input-size", "--normalize",
                   "--min-evals", "--max-evals", "--max-N", "--precision", "--fix-fingers", "--mp-fit", "--randomize",
                   "--randomize-precision", "--seed", "--threads", "--time-budget", "--no-progress", "--xmin-max",
                   "--detx", "--fit-tests", "--vectors", "--tolerance", "--inverse", "--start-ids", "--intra",
                   "--no-sparsify"]


@pytest.mark.parametrize("command", ["analyze", "report", "compare", "serve", "zoo"])
def test_every_command_that_analyses_takes_the_shared_options(command):
    text = run(command, "--help").stdout
    expected = set(ANALYZE_OPTIONS)
    if command in ("compare", "serve", "zoo"):
        expected -= {"--layers", "--no-progress"}
    if command == "zoo":
        expected -= {"--time-budget"}  # zoo has --study-time-budget
    missing = [o for o in sorted(expected) if o not in text]
    assert not missing, f"hts {command} lacks {missing}"
    if command == "analyze":
        assert "examples:" in text


def test_the_cli_options_are_hts_analyze_options(model):
    args = ["--fix-fingers", "clip_xmax", "--min-evals", "10", "--max-evals", "5000", "--max-N", "10000",
            "--normalize", "--seed", "3", "--time-budget", "300", "--precision", "float32", "--threads", "1"]
    r = run("analyze", str(model), "--format", "json", *args)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    expected = hts.analyze(str(model), fix_fingers="clip_xmax", min_evals=10, max_evals=5000, max_N=10000,
                           normalize=True, seed=3, precision="float32", threads=1)
    assert doc["summary"]["alpha"] == pytest.approx(expected.summary["alpha"], rel=1e-12)
    assert doc["options"]["fix_fingers"] == "clip_xmax" and doc["options"]["normalize"] is True


@pytest.mark.parametrize("args,message", [
    (["--conv-input-size", "8"], "needs --conv-method fft"),
    (["--randomize", "--conv-method", "fft"], "not available with --conv-method fft"),
    (["--min-evals", "100", "--max-evals", "10"], "larger than --max-evals"),
    (["--min-evals", "0"], "at least 1"), (["--time-budget", "inf"], "finite"),
    (["--conv-method", "fft", "--conv-input-size", "3x"], "N1xN2"),
])
def test_usage_errors(model, args, message):
    r = run("analyze", str(model), *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_outputs_are_checked_before_the_analysis(model, tmp_path):
    for command in (["analyze", str(model), "-o", str(tmp_path / "missing" / "t.csv"), "--format", "csv"],
                    ["report", str(model), "-o", str(tmp_path / "missing" / "r.html")]):
        r = run(*command)
        assert r.returncode == 2 and "does not exist" in r.stderr, r.stderr
    r = run("analyze", str(model), "-o", str(tmp_path), "--format", "csv")
    assert r.returncode == 2 and "is a folder" in r.stderr


def test_one_layer_filter_for_api_and_cli(model):
    inv = hts.open(str(model))
    names = lambda ts: [t.longname for t in ts]  # noqa: E731
    assert names(select(inv.tensors, ["dense", "-lm_head"])) == ["a", "b", "tiny"]
    assert names(select(inv.tensors, "-*a*")) == ["b", "tiny"]  # "lm_head" and "a" contain an a
    assert names(select(inv.tensors, [1, 3])) == ["a", "lm_head"]
    assert names(select(inv.tensors, [-1])) == ["b", "lm_head", "tiny"]
    assert parse_layer_filter("dense, -lm_head,3,-2") == ["dense", "-lm_head", 3, -2]
    for bad in (3.5, [1, 2.0], b"a", True, {"a": 1}.items()):
        with pytest.raises(TypeError):
            hts.analyze(str(model), layers=bad)
    r = run("analyze", str(model), "--format", "json", "--layers", "dense,-lm_head,-tiny")
    assert r.returncode == 0, r.stderr
    assert [row["longname"] for row in json.loads(r.stdout)["layers"]] == ["a", "b"]
    # API: a filter that keeps nothing warns (the CLI exits 1, tested in test_cli)
    import logging

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("hts").addHandler(handler)
    try:
        assert hts.analyze(str(model), layers="nothing*").rows == []
    finally:
        logging.getLogger("hts").removeHandler(handler)
    assert any("keeps none" in r.getMessage() for r in records)


def test_nothing_analysable_is_an_error(model):
    r = run("analyze", str(model), "--min-evals", "1000")
    assert r.returncode == 1 and "no layer was analysed" in r.stderr and "min_evals" in r.stderr


def test_mp_fit_and_randomize_columns_in_the_table(model):
    r = run("analyze", str(model), "--mp-fit", "--randomize", "--layers", "a,b")
    assert r.returncode == 0, r.stderr
    header = r.stdout.splitlines()[0].split()
    assert {"num_spikes", "mp_softrank", "rand_distance", "num_traps"} <= set(header)
    assert "num_spikes" not in run("analyze", str(model), "--layers", "a").stdout.splitlines()[0]


def test_progress_true_shows_progress_and_false_is_quiet(model):
    code = ("import hts, sys; hts.analyze(sys.argv[1], progress={}); "
            "hts.analyze(sys.argv[1], progress=False)")
    loud = subprocess.run([sys.executable, "-c", code.format("True"), str(model)], capture_output=True, text=True)
    assert loud.returncode == 0 and "hts: 3/3 layers (100%)" in loud.stderr, loud.stderr  # tiny is gated
    quiet = subprocess.run([sys.executable, "-c", code.format("False"), str(model)], capture_output=True, text=True)
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_every_option_of_every_command_has_help_and_examples():
    import argparse

    from hts.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in sub.choices.items():
        bare = [a.option_strings or a.dest for a in parser._actions
                if not a.help and not isinstance(a, argparse._HelpAction)]
        assert not bare, f"hts {name}: options without help: {bare}"
        assert parser.epilog and "example" in parser.epilog, f"hts {name} has no examples"


def test_compare_checks_its_outputs_before_analysing(model, tmp_path):
    for option in ("-o", "--csv", "--json", "--plot"):
        r = run("compare", f"a={model}", f"b={model}", "--accuracy", "a=1", "--accuracy", "b=2", option,
                str(tmp_path / "missing" / "out.x"))
        assert r.returncode == 2 and f"{option} " in r.stderr and "does not exist" in r.stderr, r.stderr


def test_progress_true_in_a_jupyter_kernel_is_a_tqdm_bar(monkeypatch, model):
    """stderr in a notebook is no terminal, but the kernel shows tqdm (tqdm.auto); a plain pipe gets lines."""
    import types

    pytest.importorskip("tqdm")
    from hts import _progress

    assert isinstance(_progress.make_progress(True), _progress._Lines)  # pytest's stderr: not a terminal
    kernel = types.SimpleNamespace(config={"IPKernelApp": {}})
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: kernel))
    bar = _progress.make_progress(True)
    try:
        assert isinstance(bar, _progress._Bar) and bar.tqdm.__module__.startswith("tqdm")
    finally:
        bar.close()
    seen = []
    hts.analyze(str(model), progress=lambda done, total, name: seen.append(done))
    assert seen[-1] == 3
