"""Import workload: how long ``import hts`` takes in a fresh interpreter, next to numpy and WeightWatcher.

    python bench/import_time.py [--quick | --smoke] [--out bench/results/import_time.md]

Each measurement is a new ``python -c`` subprocess that times its own import with perf_counter (the
interpreter's start-up is reported separately); the table gives the median over the repeats. hts imports
numpy, so "import hts" includes numpy's import; "hts beyond numpy" is the difference of the medians.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

from _common import bench_dir, parse_mode, write_standalone
from _report import Section, Table, goal_at_most, ratio

CODE = "import time; t0 = time.perf_counter(); import {module}; print(time.perf_counter() - t0)"
REPEATS = {"smoke": 2, "quick": 7, "full": 15}


def import_seconds(module: str) -> float:
    """Seconds one fresh interpreter spends importing ``module`` (its own clock)."""
    out = subprocess.run([sys.executable, "-c", CODE.format(module=module)], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    return float(out.stdout.strip().splitlines()[-1])


def startup_seconds() -> float:
    """Wall seconds of an interpreter that does nothing (start-up and shutdown)."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - t0


def openblas_fallback() -> bool:
    """Whether ``import hts`` had to load scipy-openblas32 by path (the extension's RPATH missed it).

    That happens when hts and scipy-openblas32 sit in different site-packages (e.g. a venv made with
    --system-site-packages); it costs the import of scipy_openblas32 and importlib.metadata.
    """
    code = "import sys, hts; print('scipy_openblas32' in sys.modules)"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "True"


def importable(module: str) -> bool:
    out = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True)
    return out.returncode == 0


def run(mode: str) -> Section:
    reps = REPEATS[mode]
    cols = [("measurement", "text"), ("median (ms)", "ms"), ("min (ms)", "ms"), ("repeats", "int"),
            ("÷ import hts", "x")]
    table = Table("Import time in a fresh interpreter", cols)
    start = [startup_seconds() for _ in range(reps)]
    hts_t = [import_seconds("hts") for _ in range(reps)]
    np_t = [import_seconds("numpy") for _ in range(reps)]
    hts_med = statistics.median(hts_t)
    table.add("import hts", hts_med, min(hts_t), reps, 1.0)
    table.add("import numpy (hts imports it)", statistics.median(np_t), min(np_t), reps,
              ratio(statistics.median(np_t), hts_med))
    table.add("hts beyond numpy (difference of medians)", hts_med - statistics.median(np_t), None, reps, None)
    if mode != "smoke" and importable("weightwatcher"):
        ww_reps = 3
        ww_t = [import_seconds("weightwatcher") for _ in range(ww_reps)]
        table.add("import weightwatcher (0.7.7; imports torch)", statistics.median(ww_t), min(ww_t), ww_reps,
                  ratio(statistics.median(ww_t), hts_med))
    table.add("python -c pass (interpreter start-up, wall)", statistics.median(start), min(start), reps, None)
    fallback = openblas_fallback()
    table.notes = ("The import times exclude the interpreter's start-up (last row). The first import after a "
                   "build or on a cold disk cache is slower; the median hides it. "
                   + ("In this environment the extension's RPATH did not find scipy-openblas32 (hts and it are in "
                      "different site-packages), so `hts._native` loaded it by path, which adds the import of "
                      "scipy_openblas32 and importlib.metadata (tens of ms); a plain `pip install hts` in one "
                      "environment does not pay this." if fallback else
                      "The kernel's OpenBLAS was found through the extension's RPATH (no fallback import)."))
    goals = [goal_at_most("import hts under 100 ms", 0.1, [hts_med], "ms", "median over fresh interpreters")]
    return Section("import_time", "import hts", [table], goals)


def main() -> None:
    mode, out = parse_mode(__doc__.splitlines()[0], os.path.join(bench_dir(), "results", "import_time.md"))
    write_standalone(run(mode), mode, out)


if __name__ == "__main__":
    main()
