"""The staged eigensolver of one large Gram matrix at 1 and 2 threads, against LAPACK's serial path.

    python bench/parallel_eigensolver.py [--shapes 4096x4096,11008x4096,2048x2048] [--dtypes f64,f32]
                                         [--reps 3] [--out bench/results/parallel_eigensolver.md]

For W (rows×cols, Student-t(4) entries; the first seed whose float64 Gram does not trigger the SVD refine) the whole kernel call ``_core.gram_eigenvalues([W])`` is timed
(Gram product + eigensolve + refine test) three ways, alternating, ``--reps`` times each:

- *LAPACK serial*: the path used before issue 15 for every thread count: LAPACK ``syevd_2stage`` (values only)
  on one thread (``staged_min`` set beyond the Gram side);
- *staged, 1 thread* and *staged, 2 threads*: hts's staged solver (cpp/staged_eigen.hpp), forced at every size
  here; by default it serves Gram sides from 2560 (float64) / 1536 (float32), where it is at least as fast as
  LAPACK's serial path on one thread.

It also times the bulge chasing + sterf alone (``_core._band_eigenvalues``) on a random band matrix of the same
side and bandwidth 64, serial LAPACK ``sytrd_sb2st`` vs hts's at 2 threads, to show stage 2's share. Reported:
min and median seconds, the speed-ups, whether every result is bit-identical across thread counts (1, 2, 3),
and the largest eigenvalue difference to the LAPACK path relative to λ_max.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine, markdown_table  # noqa: E402

from hts._native import _core  # noqa: E402

PATHS = {"lapack1": (1, 10**9), "staged1": (1, 1), "staged2": (2, 1)}


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def refine_fires(ev: np.ndarray, rows: int, cols: int) -> bool:
    """The kernel's test for redoing a float64 matrix by SVD: λ_min < 100·(N+M)·ε·λ_max."""
    return bool(ev[0] < 100 * (rows + cols) * np.finfo(np.float64).eps * ev[-1])


def matrix(rows: int, cols: int, precision: str) -> tuple[np.ndarray, int]:
    """Student-t(4) W from the first seed (0, 1, ...) whose float64 Gram the SVD refine leaves alone: a square
    i.i.d. matrix has σ_min ≈ 0 by chance often enough that the refine (a full SVD, ~10× the eigensolve) would
    otherwise be what is timed."""
    for seed in range(8):
        w = np.random.default_rng(seed).standard_t(4, (rows, cols))
        if precision == "float32" or not refine_fires(_core.gram_eigenvalues([w], threads=0)[0], rows, cols):
            break
    return (w.astype(np.float32) if precision == "float32" else w), seed


def one_shape(rows: int, cols: int, precision: str, reps: int) -> list[str]:
    w, seed = matrix(rows, cols, precision)
    times: dict[str, list[float]] = {k: [] for k in PATHS}
    results: dict[str, np.ndarray] = {}
    for _ in range(reps):
        for name, (threads, staged_min) in PATHS.items():
            dt, ev = timed(lambda: _core.gram_eigenvalues([w], precision=precision, threads=threads,
                                                          staged_min=staged_min)[0])
            times[name].append(dt)
            results[name] = ev
    three = _core.gram_eigenvalues([w], precision=precision, threads=3, staged_min=1)[0]
    identical = np.array_equal(results["staged1"], results["staged2"]) and np.array_equal(results["staged1"], three)
    lam_max = float(results["lapack1"][-1])
    diff = float(np.max(np.abs(results["staged1"].astype(np.float64) - results["lapack1"]))) / lam_max
    lo = {k: min(v) for k, v in times.items()}
    med = {k: statistics.median(v) for k, v in times.items()}
    return [f"{rows}×{cols} (seed {seed})", precision, f"{lo['lapack1']:.2f} / {med['lapack1']:.2f}",
            f"{lo['staged1']:.2f} / {med['staged1']:.2f}", f"{lo['staged2']:.2f} / {med['staged2']:.2f}",
            f"{lo['lapack1'] / lo['staged2']:.2f}×", f"{lo['staged1'] / lo['staged2']:.2f}×",
            "yes" if identical else "**NO**", f"{diff:.1e}"]


def band_stage(n: int, precision: str, reps: int) -> list[str]:
    kd = 64
    band = np.random.default_rng(0).standard_normal((n, kd + 1)).astype(np.float64 if precision == "float64" else np.float32)
    serial, two = [], []
    for _ in range(reps):
        serial.append(timed(lambda: _core._band_eigenvalues(band, kd, lapack_serial=True))[0])
        two.append(timed(lambda: _core._band_eigenvalues(band, kd, threads=2))[0])
    same = np.array_equal(_core._band_eigenvalues(band, kd, lapack_serial=True), _core._band_eigenvalues(band, kd, threads=2))
    return [f"{n}", precision, f"{min(serial):.3f}", f"{min(two):.3f}", f"{min(serial) / min(two):.2f}×",
            "yes" if same else "**NO**"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shapes", default="4096x4096,11008x4096,2048x2048")
    p.add_argument("--dtypes", default="f64,f32")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "parallel_eigensolver.md"))
    a = p.parse_args()
    precisions = [{"f64": "float64", "f32": "float32"}[d] for d in a.dtypes.split(",")]
    shapes = [tuple(int(x) for x in s.split("x")) for s in a.shapes.split(",")]
    load0 = os.getloadavg()[0]
    rows = [one_shape(r, c, pr, a.reps) for pr in precisions for r, c in shapes]
    sides = sorted({min(r, c) for r, c in shapes}, reverse=True)
    band_rows = [band_stage(n, pr, a.reps) for pr in precisions for n in sides]
    load1 = os.getloadavg()[0]
    text = "\n".join([
        f"# Staged parallel eigensolver — {time.strftime('%Y-%m-%d')} (issue 15 item 2)\n",
        machine() + "\n",
        f"`python bench/parallel_eigensolver.py --shapes {a.shapes} --dtypes {a.dtypes} --reps {a.reps}`; "
        f"1-minute load average {load0:.1f} before, {load1:.1f} after.\n",
        "Whole kernel call (Gram product + eigensolve), seconds as min / median of the repetitions:\n",
        markdown_table(["W", "precision", "LAPACK serial (before) s", "staged 1 thread s", "staged 2 threads s",
                        "before ÷ staged 2t", "staged 1t ÷ 2t", "bit-identical 1/2/3 threads",
                        "max |Δλ| / λ_max vs LAPACK"], rows),
        "\nStage 2 + 3 alone (band → tridiagonal → eigenvalues, bandwidth 64, random band), min seconds:\n",
        markdown_table(["side", "precision", "LAPACK sytrd_sb2st + sterf s", "hts bulge chasing 2 threads + sterf s",
                        "speed-up", "bit-identical"], band_rows),
        "",
    ])
    print(text)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
