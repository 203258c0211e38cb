"""Power-law fit workload: the exact xmin search of hts vs a vectorised numpy scan, WeightWatcher's own numpy fit
(``WWFit``) and the ``powerlaw`` 1.x package, for n = 1k / 10k / 100k eigenvalues.

    python bench/power_law.py [--quick | --smoke] [--out bench/results/power_law.md]

Every contender fits the same data in the same run; nothing is asserted. powerlaw 1.x is O(n²) in pure numpy
(about 70 s at 10k on the project's machine), so it runs at 1k only with --quick and never at 100k.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings

import numpy as np

from _common import bench_dir, median_time, once, parse_mode, thread_counts, write_standalone
from _report import Section, Table, goal_at_least, ratio

from hts import spectra

SIZES = (1_000, 10_000, 100_000)


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


def sample(n: int, seed: int = 1) -> np.ndarray:
    """A gamma bulk plus a Pareto tail (α = 2.5), 20 % of the values in the tail: like a trained layer's ESD."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.gamma(4.0, 0.25, n - n // 5), rng.pareto(1.5, n // 5) + 1.5])


@contextlib.contextmanager
def silenced():
    """powerlaw prints its progress and warns; keep the output readable."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def ww_fit(x: np.ndarray) -> float:
    """WeightWatcher 0.7.7's default fit (its numpy ``WWFit``, xmax = max)."""
    from weightwatcher.WW_powerlaw import WWFit

    with silenced():
        return float(WWFit(x, xmax=float(x.max())).alpha)


def powerlaw_fit(x: np.ndarray) -> float:
    """The powerlaw 1.x package as WeightWatcher calls it for its non-default fits."""
    import powerlaw

    with silenced():
        return float(powerlaw.Fit(x, xmax=float(x.max()), verbose=False).alpha)


def importable(module: str) -> bool:
    try:
        with silenced():
            __import__(module)
        return True
    except ImportError:
        return False


def run(mode: str) -> Section:
    threads = thread_counts()
    tn = threads[-1]
    sizes = (200, 600) if mode == "smoke" else SIZES
    have_ww, have_pl = importable("weightwatcher"), importable("powerlaw")
    cols = [("n eigenvalues", "int")] + [(f"hts {t}t", "ms") for t in threads] + [
        ("numpy scan", "ms"), ("WW WWFit", "ms"), ("powerlaw 1.5", "ms"),
        ("numpy scan / hts 1t", "x"), (f"numpy scan / hts {tn}t", "x"), ("WWFit / hts 1t", "x"),
        ("powerlaw / hts 1t", "x"), ("scan = hts (xmin, alpha)", "text"), ("powerlaw alpha − hts alpha", "e")]
    table = Table("Power-law fit, exact xmin search (median ms)", cols)
    at_10k = []
    for n in sizes:
        x = sample(n)
        fit = spectra.fit_power_law(x)
        hts_t = {t: median_time(lambda: spectra.fit_power_law(x, threads=t), mode=mode) for t in threads}
        scan = wwfit = pl = None
        same = pl_dev = None
        if not (mode != "full" and n >= 100_000):
            scan = median_time(lambda: numpy_power_law_scan(x), mode=mode, max_reps=3 if n < 100_000 else 1)
            a_np, xmin_np, _ = numpy_power_law_scan(x)
            same = "yes" if xmin_np == fit.xmin and abs(a_np - fit.alpha) < 1e-9 * fit.alpha else "NO"
        if have_ww and n < 100_000:
            wwfit = median_time(lambda: ww_fit(x), mode=mode, max_reps=3)
        if have_pl and (n <= 1_000 or mode == "full" and n <= 10_000):
            pl = median_time(lambda: powerlaw_fit(x), mode=mode, max_reps=3) if n <= 1_000 else once(
                lambda: powerlaw_fit(x))
            pl_dev = powerlaw_fit(x) - fit.alpha
        row = [n] + [hts_t[t] for t in threads] + [scan, wwfit, pl, ratio(scan, hts_t[1]), ratio(scan, hts_t[tn]),
                                                   ratio(wwfit, hts_t[1]), ratio(pl, hts_t[1]), same, pl_dev]
        table.add(*row)
        if n == 10_000:
            at_10k.append(ratio(scan, hts_t[1]))
    table.notes = ("\"×\" columns: contender time ÷ hts time (above 1: hts is faster). Data: a gamma bulk plus a "
                   "Pareto tail (α = 2.5), 20 % of the values in the tail. \"—\": not run in this mode "
                   "(numpy scan at 100k: full runs only, ~25 s; WWFit at 100k and powerlaw at 100k: not run, "
                   "O(n²); powerlaw at 10k: full runs only, one run, ~70 s). powerlaw 1.5 searches xmin its own "
                   "way, so its alpha differs (last column); the numpy scan must agree with hts exactly.")
    goals = [goal_at_least("xmin search ≥ 20× faster than the vectorised numpy scan at 10k eigenvalues", 20.0,
                           at_10k, "x", "n = 10,000, hts on 1 thread")] if mode != "smoke" else []
    return Section("power_law", "Power-law fit (xmin search)", [table], goals)


def main() -> None:
    mode, out = parse_mode(__doc__.splitlines()[0], os.path.join(bench_dir(), "results", "power_law.md"))
    write_standalone(run(mode), mode, out)


if __name__ == "__main__":
    main()
