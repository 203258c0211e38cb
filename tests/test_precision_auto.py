"""precision="auto": float32 (with the float64 redo rule) for layers whose smaller side is at least
AUTO_FLOAT32_MIN_SIDE, float64 for the others — each row equal to the run that uses that precision for all."""

import subprocess
import sys

import numpy as np
import pytest

import hts
from hts.analysis import AUTO_FLOAT32_MIN_SIDE


def _weights():
    rng = np.random.default_rng(7)
    side = AUTO_FLOAT32_MIN_SIDE
    heavy = rng.standard_t(3, size=(side + 64, side)) / np.sqrt(side)  # Gram order = side: float32 under auto
    return {
        "big.weight": heavy,
        "small.weight": rng.standard_t(3, size=(300, 200)),  # Gram order 200: float64 under auto
        "narrow.weight": rng.standard_normal((side * 2, side - 1)),  # smaller side just below the threshold
    }


def _rows(precision):
    return {r["longname"]: r for r in hts.analyze(_weights(), precision=precision, threads=2).rows}


@pytest.fixture(scope="module")
def runs():
    return {p: _rows(p) for p in ("auto", "float32", "float64")}


def test_each_row_equals_the_run_of_its_precision(runs):
    auto = runs["auto"]
    assert set(auto) == {"big", "small", "narrow"}
    for name, row in auto.items():
        expected = "float32" if name == "big" else "float64"
        reference = runs[expected][name]
        assert row["precision"] == reference["precision"]
        for column in ("alpha", "xmin", "lambda_max", "log_norm", "alpha_weighted", "num_pl_spikes"):
            assert row[column] == reference[column], (name, column)
    assert auto["small"]["precision"] == auto["narrow"]["precision"] == "float64"


def test_float32_rows_differ_from_float64(runs):
    """The test above could not fail if float32 and float64 gave the same numbers: they must not."""
    assert runs["float32"]["big"]["lambda_max"] != runs["float64"]["big"]["lambda_max"]


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="auto"):
        hts.analyze({"w": np.ones((20, 10))}, precision="float16")


def test_cli_accepts_auto(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, **{"small.weight": np.random.default_rng(1).standard_normal((120, 80))})
    out = subprocess.run([sys.executable, "-m", "hts", "analyze", str(path), "--precision", "auto", "--format",
                          "csv"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "float64" in out.stdout
