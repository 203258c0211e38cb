"""Bootstrap p-value workload: ``hts.goodness.power_law_pvalue`` vs a plain numpy loop doing the same replicates.

    python bench/goodness.py [--replicates 1000] [--n 1000] [--numpy-replicates 50] [--out bench/results/goodness.md]

The numpy contender draws the same synthetic samples (same generators) and fits each with a vectorised numpy
xmin scan (suffix sums for alpha, one vectorised KS distance per candidate; the scan of bench/power_law.py); it
is timed on fewer replicates and reported per replicate, so the ratio is per replicate. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from hts.goodness import power_law_pvalue


def numpy_fit_D(x: np.ndarray) -> float:
    """KS distance of the best xmin (WeightWatcher's standard fit, n >= 20), vectorised numpy."""
    x = np.sort(x[x > 1e-5])
    n = x.size
    logx = np.log(x)
    suffix = np.cumsum(logx[::-1])[::-1]
    m = n - np.arange(n - 1)
    alphas = 1 + m / (suffix[:-1] - m * logx[:-1])
    best = np.inf
    for i in range(n - 1):
        a = alphas[i]
        if not a > 1:
            continue
        k = np.arange(m[i])
        d = np.max(np.abs(1 - np.exp((1 - a) * (logx[i:] - logx[i])) - k / m[i]))
        best = min(best, d)
    return best


def numpy_pvalue_loop(x: np.ndarray, xmin: float, alpha: float, tail: int, D: float, seed: int, R: int) -> float:
    hits = 0
    body = x[x < xmin]
    for r in range(R):
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, r])))
        n_tail = int(rng.binomial(x.size, tail / x.size)) if body.size else x.size
        t = xmin * (1.0 - rng.random(n_tail)) ** (-1.0 / (alpha - 1.0))
        s = np.concatenate([t, body[rng.integers(0, body.size, x.size - n_tail)]])
        hits += numpy_fit_D(s) >= D
    return hits / R


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=1000)
    ap.add_argument("--numpy-replicates", type=int, default=50)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n_tail = args.n // 5
    x = np.sort(np.concatenate([rng.lognormal(0.0, 0.5, args.n - n_tail), 2.0 * (1 - rng.random(n_tail)) ** (-1 / 1.5)]))
    rows = []
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    res = None
    for threads in sorted({1, min(2, cores)}):
        t0 = time.perf_counter()
        res = power_law_pvalue(x, replicates=args.replicates, seed=1, threads=threads)
        dt = time.perf_counter() - t0
        rows.append((f"hts, {threads} thread(s)", args.replicates, dt, dt / args.replicates))
    f = res.fit
    t0 = time.perf_counter()
    numpy_pvalue_loop(x, f.xmin, f.alpha, f.tail, f.D, 1, args.numpy_replicates)
    dt = time.perf_counter() - t0
    rows.append(("numpy loop (vectorised scan)", args.numpy_replicates, dt, dt / args.numpy_replicates))
    base = rows[-1][3]
    lines = [f"# Bootstrap p-value, n = {args.n} eigenvalues ({platform.processor() or platform.machine()}, "
             f"{cores} usable cores)", "",
             f"p = {res.p:.3f} over {args.replicates} replicates (tail {f.tail}, alpha {f.alpha:.3f})", "",
             "| contender | replicates | total s | ms / replicate | speed-up vs numpy |", "|---|---|---|---|---|"]
    for name, r, total, per in rows:
        lines.append(f"| {name} | {r} | {total:.2f} | {per * 1e3:.2f} | {base / per:.1f}× |")
    if hasattr(os, "getloadavg"):
        lines += ["", f"Load average at the end of the run: {os.getloadavg()[0]:.2f} on {cores} usable cores (above "
                      "about 1 per core the machine is shared and the 2-thread row cannot show a speed-up)."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
