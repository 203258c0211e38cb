"""The benchmark suite keeps working: ``bench/run.py --smoke`` runs every workload on tiny inputs and writes a
report and strict JSON. Only the plumbing is checked here, never a timing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"

pytest.importorskip("scipy")  # the LAPACK floor contender


def run_suite(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH / "run.py"), *args], capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    proc = run_suite("--smoke", "--out-dir", str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def test_smoke_writes_markdown_and_strict_json(smoke):
    text = (smoke / "latest.md").read_text()
    data = json.loads((smoke / "latest.json").read_text())
    assert "NaN" not in (smoke / "latest.json").read_text()  # json.loads accepts NaN; the file must not hold it
    assert data["mode"] == "smoke"
    assert data["machine"]["cpu"] and data["machine"]["usable_cores"] >= 1
    assert data["machine"]["versions"]["hts"]
    names = [s["name"] for s in data["sections"]]
    assert names == ["import_time", "kernel", "power_law", "conv_fft", "analyze", "rmt", "llama_checkpoint"]
    assert not [s["name"] for s in data["sections"] if s["failed"]]
    for s in data["sections"]:
        assert s["title"] in text
        for t in s["tables"]:
            assert t["rows"], t["title"]
            assert all(len(r) == len(t["columns"]) for r in t["rows"])


def test_every_workload_has_hts_and_a_contender(smoke):
    data = json.loads((smoke / "latest.json").read_text())
    by_name = {s["name"]: s for s in data["sections"]}
    kernel = by_name["kernel"]["tables"][0]
    cols = [c[0] for c in kernel["columns"]]
    for needed in ("hts 1t", "numpy svd 1t", "numpy eigvalsh 1t", "floor 1t", "hts 1t ÷ floor 1t"):
        assert needed in cols
    row = kernel["rows"][0]
    assert all(isinstance(row[cols.index(c)], float) and row[cols.index(c)] > 0
               for c in ("hts 1t", "numpy svd 1t", "floor 1t"))
    pl_cols = [c[0] for c in by_name["power_law"]["tables"][0]["columns"]]
    assert "numpy scan" in pl_cols and "scan = hts (xmin, alpha)" in pl_cols
    assert all(r[pl_cols.index("scan = hts (xmin, alpha)")] == "yes" for r in by_name["power_law"]["tables"][0]["rows"])
    assert by_name["analyze"]["tables"][0]["rows"][0][0] == "tiny synthetic (numpy)"


def test_unknown_workload_is_refused(tmp_path):
    proc = run_suite("--smoke", "--only", "nope", "--out-dir", str(tmp_path))
    assert proc.returncode == 2 and "unknown workload" in proc.stderr


def test_report_helpers():
    sys.path.insert(0, str(BENCH))
    try:
        from _report import Table, fmt, goal_at_least, goal_at_most, to_jsonable
    finally:
        sys.path.remove(str(BENCH))
    assert fmt(None, "ms") == "—" and fmt(float("nan"), "x") == "—"
    assert fmt(0.0123, "ms") == "12.30" and fmt(12.34, "x") == "12×" and fmt(1.5, "x") == "1.50×"
    assert goal_at_most("g", 1.2, [1.0, 1.3, None], "r", "").met is False
    assert goal_at_least("g", 10.0, [12.0, 11.0], "x", "").measured == 11.0
    assert goal_at_least("g", 10.0, [None], "x", "").met is None
    t = Table("t", [("a", "text"), ("b", "s")])
    with pytest.raises(ValueError, match="2 columns"):
        t.add("only one")
    assert to_jsonable({"x": float("inf"), "y": [1.0]}) == {"x": None, "y": [1.0]}
