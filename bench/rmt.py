"""RMT metrics side by side with WeightWatcher 0.7.7: parity of ``mp_fit=True`` / ``randomize=True`` and speed.

    python bench/rmt.py [--quick | --smoke] [--site DIR] [--cases N] [--out bench/results/rmt.md]

Needs ``weightwatcher`` (0.7.7; torch is not needed) and ``hts`` importable in one interpreter; ``--site DIR``
adds another environment's site-packages (e.g. hts's own venv) after the running one's, so that
WeightWatcher's numpy/scipy/scikit-learn stay the ones it runs with.

Parity: (1) ``WeightWatcher.mp_fit`` vs ``hts.spectra.marchenko_pastur_fit`` on the same eigenvalues (MP,
heavy-tailed, spiked, pooled-conv-like, Q == 1, Q < 1, small and degenerate spectra); (2) WeightWatcher's
``jensen_shannon_distance`` vs hts's; (3) ``WeightWatcher.analyze(mp_fit=True, randomize=True)`` on a small
numpy state dict, with its randomized eigenvalues supplied by ``hts.spectra.randomized_eigenvalues`` so that
both sides see the same shuffles, vs ``marchenko_pastur_fit`` + ``randomization_metrics``. Timing: the MP fit
per layer, and the whole ``randomize`` step per layer. Nothing is asserted: the numbers are for people.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import site
import sys
import types
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import bench_dir, median_time, write_standalone  # noqa: E402
from _report import Section, Table, ratio  # noqa: E402

MP_KEYS = ("num_spikes", "sigma_mp", "mp_softrank", "W_scale", "bulk_max", "bulk_min")
RAND_KEYS = ("max_rand_eval", "rand_distance", "ww_softrank", "ww_maxdist", "rand_num_spikes", "num_traps",
             "rand_sigma_mp", "rand_mp_softrank", "rand_W_scale", "rand_bulk_max", "rand_bulk_min")


def ww_mp_fit(ww, evals, N, M):
    """WeightWatcher.mp_fit as apply_mp_fit calls it (plots off); None where it raises (its -1 row)."""
    try:
        r = ww.mp_fit(evals, N, M, 1, "bench", 0, 0, False, False, "/tmp", "b", 0.5, True, evals)
    except Exception:  # noqa: BLE001 - WeightWatcher logs and reports -1 for any exception
        return None
    num_spikes, sigma_mp, mp_softrank, bulk_min, bulk_max, w_scale = r
    return dict(num_spikes=int(num_spikes), sigma_mp=float(sigma_mp), mp_softrank=float(mp_softrank),
                W_scale=float(w_scale), bulk_max=float(bulk_max), bulk_min=float(bulk_min))


def spectra_corpus(rng, count):
    """(label, evals, N, M): eigenvalues of random layers of many kinds, plus degenerate ones."""
    out = []
    kinds = ["mp", "mp-q1", "t2.5", "t4-scaled", "spiked", "conv-pooled", "q<1", "small"]
    for i in range(count):
        kind = kinds[i % len(kinds)]
        M = int(rng.integers(20, 500))
        Q = {"mp-q1": 1.0, "q<1": rng.uniform(0.3, 0.9), "small": rng.uniform(1, 4)}.get(kind, rng.uniform(1, 6))
        if kind == "small":
            M = int(rng.integers(2, 20))
        N = M if Q == 1.0 else max(1, int(round(M * Q)))
        if kind == "conv-pooled":
            w = rng.standard_normal((9, N, M)) * 0.05
            ev = np.sort(np.concatenate([np.linalg.svd(s, compute_uv=False) ** 2 for s in w]) * 0.5)
        else:
            if kind in ("t2.5", "t4-scaled"):
                w = rng.standard_t(2.5 if kind == "t2.5" else 4, size=(N, M)) * (1 if kind == "t2.5" else 1e-2)
            else:
                w = rng.standard_normal((N, M))
            if kind == "spiked":
                w += 4 * np.outer(rng.standard_normal(N), rng.standard_normal(M)) / math.sqrt(math.sqrt(N * M))
            ev = np.sort(np.linalg.svd(w, compute_uv=False) ** 2)
        out.append((kind, ev, N, M))
    out += [("all-equal", np.ones(50), 100, 50), ("with-zeros", np.r_[np.zeros(10), np.linspace(0.5, 2, 90)], 200, 100),
            ("single", np.array([3.0]), 10, 1), ("all-zero", np.zeros(20), 40, 20),
            ("two-clusters", np.r_[np.full(300, 0.01), np.full(3, 500.0)], 606, 303)]
    return out


def rel(a, b):
    if a == b:
        return 0.0
    return abs(a - b) / max(abs(a), abs(b))


def parity_mp(ww, spectra):
    from hts import spectra as hs

    worst = {k: 0.0 for k in MP_KEYS}
    exact = agree_fail = total = 0
    mismatched = []
    for label, ev, N, M in spectra:
        a = ww_mp_fit(ww, ev, N, M)
        b = hs.marchenko_pastur_fit(ev, N=N, M=M)
        total += 1
        if a is None or b.status == "failed":
            agree_fail += (a is None) == (b.status == "failed")
            if (a is None) != (b.status == "failed"):
                mismatched.append((label, N, M, a, b.status, b.reason))
            continue
        bd = {k: getattr(b, k) for k in MP_KEYS}
        exact += all(a[k] == bd[k] for k in MP_KEYS)
        for k in MP_KEYS:
            worst[k] = max(worst[k], rel(a[k], bd[k]))
        if a != bd:
            mismatched.append((label, N, M, a, bd))
    return total, exact, agree_fail, worst, mismatched


def parity_js(rng, count):
    from weightwatcher.RMT_Util import jensen_shannon_distance as ww_js

    from hts import spectra as hs

    worst, exact = 0.0, 0
    for i in range(count):
        n = int(rng.integers(2, 4000))
        p = np.sort(rng.exponential(size=n)) * rng.uniform(0.1, 10)
        q = np.sort(rng.exponential(size=n))
        if i % 4 == 0:
            p[: rng.integers(0, n)] = 0
        a, b = float(ww_js(p, q)), hs.jensen_shannon_distance(p, q)
        exact += a == b
        worst = max(worst, rel(a, b))
    return count, exact, worst


def parity_analyze(seed):
    """WeightWatcher.analyze(mp_fit=True, randomize=True) with hts's shuffles vs hts's own columns."""
    import weightwatcher as wwm

    from hts import spectra as hs

    rng = np.random.default_rng(seed)
    sd = {
        "fc1.weight": rng.standard_normal((300, 120)).astype(np.float32),
        "attn.weight": (rng.standard_normal((256, 256)) / 16).astype(np.float32),
        "mlp.weight": rng.standard_t(3, size=(1024, 256)).astype(np.float32) * 0.02,
        "conv1.weight": rng.standard_normal((16, 8, 3, 3)).astype(np.float32),
        "conv2.weight": rng.standard_normal((64, 32, 3, 3)).astype(np.float32),
        "conv3.weight": rng.standard_normal((8, 24, 3, 3)).astype(np.float32),
    }
    # analyze() tests `type(w) == torch.Tensor` for state dicts; a stand-in class is enough without torch.
    wwm.weightwatcher.torch = types.SimpleNamespace(Tensor=type("NotATensor", (), {}))
    captured: dict = {}
    seeds = iter(range(10**6))
    cls = wwm.WeightWatcher
    orig_random, orig_esd = cls.random_eigenvalues, cls.apply_esd

    def random_eigenvalues(self, Wmats, n_comp, num_replicas=1, params=None):
        ev = hs.randomized_eigenvalues(np.stack([np.asarray(w, dtype=np.float64) for w in Wmats]),
                                       seed=next(seeds), replicas=num_replicas)
        captured.setdefault("rand", []).append(ev)
        return ev

    def apply_esd(self, ww_layer, params=None):
        out = orig_esd(self, ww_layer, params)
        captured.setdefault("evals", []).append(ww_layer.evals.copy())
        return out

    cls.random_eigenvalues, cls.apply_esd = random_eigenvalues, apply_esd
    try:
        df = cls(model=sd).analyze(mp_fit=True, randomize=True)
    finally:
        cls.random_eigenvalues, cls.apply_esd = orig_random, orig_esd
    worst = {k: 0.0 for k in MP_KEYS + RAND_KEYS}
    exact = 0
    for i, row in enumerate(df.itertuples(index=False)):
        row = row._asdict()
        ev, pooled, fresh = captured["evals"][i], captured["rand"][2 * i], captured["rand"][2 * i + 1]
        N, M = int(row["N"]), int(row["M"])
        mine = hs.marchenko_pastur_fit(ev, N=N, M=M).to_dict()
        mine.update(hs.randomization_metrics(ev, pooled, N=N, M=M, single_rand_evals=fresh))
        same = True
        for k in MP_KEYS + RAND_KEYS:
            worst[k] = max(worst[k], rel(float(row[k]), float(mine[k])))
            same &= float(row[k]) == float(mine[k])
        exact += same
    return len(df), exact, worst, df


SPEED_SHAPES = [(768, 768, "t"), (3072, 768, "t"), (3072, 3072, "gauss"), (9216, 3072, "t")]
RANDOMIZE_SHAPES = [(768, 768), (3072, 768)]


def bench_speed(ww, rng, mode: str = "full") -> Table:
    """The MP fit of one layer, eigenvalues given: WeightWatcher vs hts."""
    from hts import spectra as hs

    shapes = [(64, 32, "t")] if mode == "smoke" else SPEED_SHAPES
    table = Table("Speed: the MP fit of one layer (eigenvalues given, median ms)",
                  [("layer", "text"), ("eigenvalues", "int"), ("WeightWatcher", "ms"), ("hts", "ms"),
                   ("WW / hts", "x")])
    for N, M, law in shapes:
        w = rng.standard_t(4, size=(N, M)) if law == "t" else rng.standard_normal((N, M))
        ev = hs.eigenvalues(w)
        t_ww = median_time(lambda: ww_mp_fit(ww, ev, N, M), mode=mode, min_total=2.0, max_reps=3)
        t_hts = median_time(lambda: hs.marchenko_pastur_fit(ev, N=N, M=M), mode=mode, max_reps=50)
        table.add(f"{N}×{M} ({law})", M, t_ww, t_hts, ratio(t_ww, t_hts))
    return table


def bench_randomize(ww, rng, mode: str = "full") -> Table:
    """Whole randomize step of one layer: WeightWatcher's random_eigenvalues (twice) + distance + MP fit."""
    from weightwatcher.RMT_Util import jensen_shannon_distance as ww_js

    from hts import spectra as hs

    shapes = [(256, 128)] if mode == "smoke" else RANDOMIZE_SHAPES
    table = Table("Speed: the randomize step of one layer (2 shuffles + SVDs, distance, MP fit; median ms)",
                  [("layer", "text"), ("WeightWatcher", "ms"), ("hts", "ms"), ("WW / hts", "x")])
    for N, M in shapes:
        w = rng.standard_t(4, size=(N, M))
        ev = hs.eigenvalues(w)
        params = dict(wwm_params())

        def ww_step():
            pooled = ww.random_eigenvalues([w], M, 1, params)
            fresh = ww.random_eigenvalues([w], M, 1, params)
            ww_js(ev, fresh)
            ww_mp_fit(ww, pooled, N, M)

        def hts_step():
            pooled = hs.randomized_eigenvalues(w, seed=1)
            fresh = hs.randomized_eigenvalues(w, seed=2)
            hs.randomization_metrics(ev, pooled, N=N, M=M, single_rand_evals=fresh)

        t_ww = median_time(ww_step, mode=mode, min_total=2.0, max_reps=3)
        t_hts = median_time(hts_step, mode=mode, max_reps=7)
        table.add(f"{N}×{M}", t_ww, t_hts, ratio(t_ww, t_hts))
    return table


def parity_lines(ww, rng, cases: int) -> list:
    """Markdown bullet lines: mp_fit, Jensen-Shannon and analyze() parity with WeightWatcher."""
    total, exact, agree_fail, worst, mism = parity_mp(ww, spectra_corpus(rng, cases))
    js_total, js_exact, js_worst = parity_js(rng, 500)
    an_total, an_exact, an_worst, _ = parity_analyze(7)
    lines = [f"- `mp_fit` on {total} spectra: {exact} identical in all six columns, {agree_fail} failed on both "
             f"sides, {len(mism)} differ.",
             "- largest relative deviation per column: " + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()),
             f"- `jensen_shannon_distance` on {js_total} vector pairs: {js_exact} identical, largest relative "
             f"deviation {js_worst:.1e}.",
             f"- `analyze(mp_fit=True, randomize=True)` (same shuffles on both sides) on {an_total} layers: "
             f"{an_exact} rows identical in all {len(an_worst)} columns; largest relative deviation: "
             + (", ".join(f"{k} {v:.1e}" for k, v in an_worst.items() if v) or "none")]
    return lines + [f"  - differs: {m}" for m in mism[:10]]


def run(mode: str, cases: int = 120) -> Section:
    """Speed tables in every mode; the parity checks (about a minute of WeightWatcher) in full runs only."""
    logging.disable(logging.CRITICAL)
    warnings.filterwarnings("ignore")
    import weightwatcher as wwm

    ww = wwm.WeightWatcher()
    rng = np.random.default_rng(20261123)
    notes = ""
    if mode == "full":
        notes = "Parity with WeightWatcher (same inputs on both sides):\n\n" + "\n".join(parity_lines(ww, rng, cases))
    else:
        notes = "Parity checks: full runs only (`python bench/rmt.py`)."
    tables = [bench_speed(ww, rng, mode), bench_randomize(ww, rng, mode)]
    return Section("rmt", f"RMT metrics (mp_fit, randomize) per layer vs WeightWatcher {wwm.__version__}", tables,
                   notes=notes)


def wwm_params():
    from weightwatcher.constants import DEFAULT_PARAMS

    return DEFAULT_PARAMS.copy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--site", help="another environment's site-packages holding hts (added after this one's)")
    ap.add_argument("--cases", type=int, default=120, help="random spectra for the mp_fit parity")
    ap.add_argument("--quick", action="store_true", help="speed tables only, fewer repeats")
    ap.add_argument("--smoke", action="store_true", help="one tiny layer: checks the plumbing only")
    ap.add_argument("--out", default=os.path.join(bench_dir(), "results", "rmt.md"))
    args = ap.parse_args()
    if args.site:
        site.addsitedir(args.site)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    write_standalone(run(mode, args.cases), mode, args.out)


if __name__ == "__main__":
    main()
