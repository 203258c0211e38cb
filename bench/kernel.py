"""Kernel workload: eigenvalues of WᵀW, hts vs numpy (svd, eigvalsh) and the LAPACK floor, 1 and 2 threads.

    python bench/kernel.py [--quick | --smoke] [--out bench/results/kernel.md]

The shapes are the foundation issue's: batches of conv slices and single Linear-sized matrices. Every contender
is timed in the same run on the same array (float64); nothing is asserted, the numbers are for people.
"""

from __future__ import annotations

import os

import numpy as np

from _common import bench_dir, blas_threads, median_time, parse_mode, thread_counts, write_standalone
from _report import Section, Table, goal_at_least, goal_at_most, ratio

from hts import spectra

SHAPES = [  # (slices, N, M)
    (9, 64, 64),
    (9, 256, 128),
    (9, 512, 512),
    (1, 1024, 1024),
    (1, 3072, 768),
    (1, 4096, 4096),
]
QUICK_SKIP = {(1, 4096, 4096)}
SMOKE_SHAPES = [(3, 16, 8), (1, 40, 24)]


def numpy_svd(w: np.ndarray) -> np.ndarray:
    """numpy's batched SVD, values only, squared."""
    return np.linalg.svd(w, compute_uv=False) ** 2


def numpy_eigvalsh(w: np.ndarray) -> np.ndarray:
    """numpy's batched Gram of the smaller side + eigvalsh."""
    g = np.swapaxes(w, -1, -2) @ w if w.shape[-2] >= w.shape[-1] else w @ np.swapaxes(w, -1, -2)
    return np.linalg.eigvalsh(g)


def lapack_floor(w: np.ndarray) -> None:
    """The practical floor: Gram product + LAPACK syevd (scipy, values only), slice by slice."""
    import scipy.linalg as sl

    for s in w:
        g = s.T @ s if s.shape[0] >= s.shape[1] else s @ s.T
        sl.eigh(g, eigvals_only=True, driver="evd", overwrite_a=True, check_finite=False)


def shape_label(k: int, n: int, m: int) -> str:
    return f"{k}×{n}×{m}" if k > 1 else f"{n}×{m}"


def run(mode: str) -> Section:
    """Time every contender on every shape; ratios are contender ÷ hts at the same thread count."""
    threads = thread_counts()
    tn = threads[-1]
    shapes = SMOKE_SHAPES if mode == "smoke" else [s for s in SHAPES if not (mode == "quick" and s in QUICK_SKIP)]
    cols = [("shape (slices×N×M)", "text"), ("hts 1t", "ms"), (f"hts {tn}t", "ms"), ("hts f32 1t", "ms")]
    for t in threads:
        cols += [(f"numpy svd {t}t", "ms"), (f"numpy eigvalsh {t}t", "ms"), (f"floor {t}t", "ms")]
    for t in threads:
        cols += [(f"svd/hts {t}t", "x"), (f"eigvalsh/hts {t}t", "x"), (f"floor/hts {t}t", "x")]
    cols += [("hts 1t ÷ floor 1t", "r"), (f"hts speed-up 1t→{tn}t", "r")]
    table = Table("Eigenvalues of WᵀW, float64 (median ms)", cols)
    rng = np.random.default_rng(0)
    within, speedups = [], []
    for k, n, m in shapes:
        w = rng.standard_normal((k, n, m))
        big = n * m >= 4096 * 4096
        res: dict[str, float] = {}
        for t in threads:
            res[f"hts {t}t"] = median_time(lambda: spectra.eigenvalues(w, threads=t), mode=mode)
        res["hts f32 1t"] = median_time(lambda: spectra.eigenvalues(w, threads=1, precision="float32"), mode=mode)
        for t in threads:
            with blas_threads(t):
                res[f"svd {t}t"] = median_time(lambda: numpy_svd(w), mode=mode, max_reps=1 if big else 3)
                res[f"eigvalsh {t}t"] = median_time(lambda: numpy_eigvalsh(w), mode=mode, max_reps=3 if big else None)
                res[f"floor {t}t"] = median_time(lambda: lapack_floor(w), mode=mode, max_reps=3 if big else None)
        row = [shape_label(k, n, m), res["hts 1t"], res[f"hts {tn}t"], res["hts f32 1t"]]
        for t in threads:
            row += [res[f"svd {t}t"], res[f"eigvalsh {t}t"], res[f"floor {t}t"]]
        for t in threads:
            row += [ratio(res[f"{c} {t}t"], res[f"hts {t}t"]) for c in ("svd", "eigvalsh", "floor")]
        row += [ratio(res["hts 1t"], res["floor 1t"]), ratio(res["hts 1t"], res[f"hts {tn}t"])]
        table.add(*row)
        within.append(row[-2])
        if k > 1 and tn > 1:
            speedups.append(row[-1])
    table.notes = (f"\"×\" columns: contender time ÷ hts time at the same thread count (above 1: hts is faster). "
                   f"\"1t\"/\"{tn}t\": threads given to hts, or BLAS threads of numpy/scipy (threadpoolctl). The "
                   "floor is scipy's Gram product + `eigh(driver='evd', eigvals_only=True)`, slice by slice. "
                   "\"hts f32\" is `precision='float32'` (not a like-for-like contender; shown for scale).")
    goals = [goal_at_most("kernel within 1.2× of the LAPACK floor, 1 thread", 1.2, within, "r", "every shape")]
    if tn > 1:
        goals.append(goal_at_least(f"kernel ≥ 1.8× faster with {tn} threads on batches of slices", 1.8, speedups,
                                   "r", "the batched shapes (slices > 1)"))
    return Section("kernel", "Kernel: eigenvalues of WᵀW", [table], goals)


def main() -> None:
    mode, out = parse_mode(__doc__.splitlines()[0], os.path.join(bench_dir(), "results", "kernel.md"))
    write_standalone(run(mode), mode, out)


if __name__ == "__main__":
    main()
