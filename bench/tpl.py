"""Truncated-power-law fit workload (``fit="TPL"``): ``hts.tpl.fit_truncated_power_law`` vs powerlaw 1.5's
``Fit(x, xmin_distribution="truncated_power_law")`` (what WeightWatcher 0.7.7 runs for ``fit="TPL"``).

    python bench/tpl.py [--sizes 30,112,1000,4000] [--powerlaw-max 112] [--out bench/results/tpl.md]

The samples are Marchenko–Pastur spectra of heavy-tailed (Student t, 3 degrees of freedom) N × M matrices,
N = 2M. powerlaw is timed only up to ``--powerlaw-max`` eigenvalues (it evaluates mpmath's incomplete gamma
function at every tail point of every xmin candidate: minutes beyond a few hundred). Both fit every distinct
value as xmin; where both ran, the table also gives the largest relative difference of alpha, Lambda and D.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import time
import warnings

import numpy as np

from hts.tpl import fit_truncated_power_law


def sample(m: int, seed: int = 0) -> np.ndarray:
    w = np.random.default_rng(seed).standard_t(3, size=(2 * m, m))
    return np.linalg.eigvalsh(w.T @ w / (2 * m))


def powerlaw_fit(x: np.ndarray):
    import powerlaw

    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = powerlaw.Fit(x[x > 1e-5], xmin_distribution="truncated_power_law", verbose=False)
        return f.truncated_power_law.alpha, f.truncated_power_law.Lambda, f.D


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="30,112,1000,4000")
    ap.add_argument("--powerlaw-max", type=int, default=112)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [f"# Truncated power law fit (fit='TPL'), ({platform.processor() or platform.machine()}, {cores} usable "
             "cores)", "",
             "| eigenvalues | hts 1 thread s | hts 2 threads s | powerlaw 1.5 s | speed-up | max rel. diff (alpha, Lambda, D) |",
             "|---|---|---|---|---|---|"]
    for m in (int(s) for s in args.sizes.split(",")):
        x = sample(m)
        times = []
        for threads in (1, min(2, cores)):
            t0 = time.perf_counter()
            h = fit_truncated_power_law(x, threads=threads)
            times.append(time.perf_counter() - t0)
        pl_s, diff = "—", "—"
        if m <= args.powerlaw_max:
            t0 = time.perf_counter()
            a, lam, D = powerlaw_fit(x)
            dt = time.perf_counter() - t0
            pl_s = f"{dt:.2f}"
            rel = max(abs(h.fit.alpha / a - 1), abs(h.Lambda / lam - 1), abs(h.fit.D / D - 1))
            diff = f"{rel:.1e}"
            speed = f"{dt / times[0]:.0f}×"
        else:
            speed = "—"
        lines.append(f"| {m} | {times[0]:.3f} | {times[1]:.3f} | {pl_s} | {speed} | {diff} |")
    if hasattr(os, "getloadavg"):
        lines += ["", f"Load average at the end of the run: {os.getloadavg()[0]:.2f} on {cores} usable cores (above "
                      "about 1 per core the machine is shared: timings are noisy and threads cannot show a speed-up)."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
