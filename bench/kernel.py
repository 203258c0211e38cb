"""Kernel benchmark: hts vs numpy/LAPACK for eigenvalues of WᵀW, and the power-law xmin search.

    python bench/kernel.py [--quick] [--out bench/results/kernel.md]

Every contender is measured in the same run; the table gives median wall times and ratios (< 1 means hts is
faster). Nothing here is asserted: the machines are noisy, the numbers are for people.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import blas_threads, markdown_table, median_time, write_report  # noqa: E402

from hts import spectra  # noqa: E402


def available_cores() -> int:
    return spectra.kernel_info()["cores"]

SHAPES = [  # (slices, N, M)
    (9, 64, 64),
    (9, 256, 128),
    (9, 512, 512),
    (1, 1024, 1024),
    (1, 3072, 768),
    (1, 4096, 4096),
]


def numpy_svd(w: np.ndarray) -> np.ndarray:
    return np.linalg.svd(w, compute_uv=False) ** 2


def numpy_eigvalsh(w: np.ndarray) -> np.ndarray:
    g = np.swapaxes(w, -1, -2) @ w if w.shape[-2] >= w.shape[-1] else w @ np.swapaxes(w, -1, -2)
    return np.linalg.eigvalsh(g)


def lapack_floor(w: np.ndarray):
    """The practical floor: Gram product + LAPACK syevd (scipy, values only), slice by slice."""
    import scipy.linalg as sl

    for s in w:
        g = s.T @ s if s.shape[0] >= s.shape[1] else s @ s.T
        sl.eigh(g, eigvals_only=True, driver="evd", overwrite_a=True, check_finite=False)


def fmt_ms(t: float | None) -> str:
    return "skipped" if t is None else (f"{t * 1e3:.2f}" if t < 10 else f"{t * 1e3:.0f}")


def bench_eigenvalues(quick: bool) -> str:
    cores = available_cores()
    try:
        import scipy  # noqa: F401

        have_scipy = True
    except ImportError:
        have_scipy = False
    rows = []
    rng = np.random.default_rng(0)
    for k, n, m in SHAPES:
        w = rng.standard_normal((k, n, m))
        big = n * m >= 4096 * 4096
        if quick and big:
            continue
        res: dict[str, float | None] = {}
        res["hts 1t"] = median_time(lambda: spectra.eigenvalues(w, threads=1))
        res[f"hts {cores}t"] = median_time(lambda: spectra.eigenvalues(w, threads=cores))
        res["hts f32 1t"] = median_time(lambda: spectra.eigenvalues(w, threads=1, precision="float32"))
        for threads in (1, cores):
            with blas_threads(threads):
                res[f"svd {threads}t"] = median_time(lambda: numpy_svd(w), max_reps=3)
                res[f"eigvalsh {threads}t"] = median_time(lambda: numpy_eigvalsh(w))
                res[f"floor {threads}t"] = median_time(lambda: lapack_floor(w)) if have_scipy else None
        best1 = min(v for key, v in res.items() if key.endswith(" 1t") and not key.startswith("hts") and v)
        bestn = min(v for key, v in res.items() if key.endswith(f" {cores}t") and not key.startswith("hts") and v)
        floor1 = res["floor 1t"]
        rows.append(
            [f"{k}×{n}×{m}" if k > 1 else f"{n}×{m}"]
            + [fmt_ms(res[c]) for c in ("hts 1t", f"hts {cores}t", "hts f32 1t", "svd 1t", "eigvalsh 1t", "floor 1t",
                                      f"svd {cores}t", f"eigvalsh {cores}t", f"floor {cores}t")]
            + [f"{res['hts 1t'] / best1:.2f}", f"{res[f'hts {cores}t'] / bestn:.2f}",
               f"{res['hts 1t'] / res[f'hts {cores}t']:.2f}",
               "—" if floor1 is None else f"{res['hts 1t'] / floor1:.2f}"]
        )
        print(" | ".join(rows[-1]), flush=True)
    header = ["shape (slices×N×M)", "hts 1t", f"hts {cores}t", "hts f32 1t", "numpy svd 1t", "numpy eigvalsh 1t",
              "Gram+syevd floor 1t", f"numpy svd {cores}t", f"numpy eigvalsh {cores}t", f"floor {cores}t",
              "hts 1t / best other 1t", f"hts {cores}t / best other {cores}t", f"speed-up 1t→{cores}t",
              "hts 1t / floor 1t"]
    return ("### Eigenvalues of WᵀW, float64 (median ms)\n\n" + markdown_table(header, rows) +
            "\n\nRatios below 1 mean hts is faster. \"1t\"/\"%dt\": threads given to hts, or BLAS threads of "
            "numpy/scipy (threadpoolctl). The floor is scipy's Gram product + `eigh(driver='evd', "
            "eigvals_only=True)`, slice by slice.\n" % cores)


def numpy_power_law_scan(x: np.ndarray) -> tuple[float, float, float]:
    """The simple vectorised numpy scan: alpha from suffix sums, D per candidate vectorised over its tail."""
    x = np.sort(x[x > 1e-5])
    n = x.size
    lx = np.log(x)
    suffix = np.cumsum(lx[::-1])[::-1]
    m = n - np.arange(n - 1)
    alphas = 1 + m / (suffix[:-1] - m * lx[:-1])
    ds = np.ones(n - 1)
    for i in range(n - 1):
        if alphas[i] > 1:
            tail = x[i:]
            ds[i] = np.max(np.abs(1 - (tail / x[i]) ** (1 - alphas[i]) - np.arange(m[i]) / m[i]))
    best = int(np.argmin(ds))
    return alphas[best], x[best], ds[best]


def bench_power_law(quick: bool) -> str:
    cores = available_cores()
    rows = []
    rng = np.random.default_rng(1)
    for n in (1_000, 10_000, 100_000):
        # A bulk plus a heavy tail, like a trained layer's ESD.
        x = np.concatenate([rng.gamma(4.0, 0.25, n - n // 5), rng.pareto(1.5, n // 5) + 1.5])
        t1 = median_time(lambda: spectra.fit_power_law(x, threads=1))
        tn = median_time(lambda: spectra.fit_power_law(x, threads=cores))
        tnp = None
        if not (quick and n >= 100_000):
            tnp = median_time(lambda: numpy_power_law_scan(x), max_reps=3 if n < 100_000 else 1)
            a_np, xmin_np, _ = numpy_power_law_scan(x)
            fit = spectra.fit_power_law(x)
            assert xmin_np == fit.xmin and abs(a_np - fit.alpha) < 1e-9 * fit.alpha, "scan and hts disagree"
        rows.append([f"{n:,}", fmt_ms(t1), fmt_ms(tn), fmt_ms(tnp),
                     "—" if tnp is None else f"{tnp / t1:.0f}×", "—" if tnp is None else f"{tnp / tn:.0f}×"])
        print(" | ".join(rows[-1]), flush=True)
    header = ["n eigenvalues", "hts 1t (ms)", f"hts {cores}t (ms)", "numpy scan (ms)", "hts 1t speed-up",
              f"hts {cores}t speed-up"]
    return ("### Power-law fit, exact xmin search (median ms)\n\n" + markdown_table(header, rows) +
            "\n\nSame xmin and alpha (checked in the run). Data: a gamma bulk plus a Pareto tail (α = 2.5), 20 % "
            "of the values in the tail.\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip 4096×4096 and the 100k numpy scan")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "kernel.md"))
    args = parser.parse_args()
    write_report("hts kernel benchmark", args.quick, [bench_eigenvalues(args.quick), bench_power_law(args.quick)], args.out)


if __name__ == "__main__":
    main()
