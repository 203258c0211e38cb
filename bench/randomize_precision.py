"""Is float32 enough for the shuffled ESD? ``randomize_precision="float32"`` vs ``"float64"`` next to the
seed-to-seed spread of every randomize column, on real models.

    python bench/randomize_precision.py [--seeds 6] [--models minilm,lite0] [--out FILE.md]

For each model, layer and seed, the randomize columns are computed twice from the same shuffles (same seed),
once with the shuffled ESD in float32 and once in float64. Per column it reports

- rel. dev: max over layers of max_seeds |float32 − float64| / mean_seeds |float64|;
- dev / spread: per layer, max_seeds |float32 − float64| divided by the seed-to-seed standard deviation of
  the float64 value (how much of one seed-to-seed standard deviation float32 moves a value); the median and
  the worst layer;
- cells differing: layer×seed cells where float32 and float64 give different values (all of them, for the
  real-valued columns, where nothing ties; the count matters for the integer rand_num_spikes).

Nothing is asserted: the numbers are for people (tests/test_analysis.py checks the same on synthetic layers).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

COLUMNS = ("rand_distance", "ww_softrank", "ww_maxdist", "max_rand_eval", "rand_num_spikes", "rand_sigma_mp",
           "rand_mp_softrank", "rand_W_scale", "rand_bulk_max", "rand_bulk_min")


def _model(name: str):
    import _models

    if name == "minilm":
        return _models.minilm_module()
    if name.startswith("lite"):
        return _models.efficientnet_lite_module(int(name[4:] or 0))
    raise SystemExit(f"unknown model {name!r} (minilm, lite0 ... lite4)")


def _columns(model, seed: int, precision: str) -> dict:
    import hts

    a = hts.analyze(model, randomize=True, seed=seed, randomize_precision=precision)
    return {r["longname"]: r for r in a.analysed if r["status"] == "success"}


def study(model, seeds: int) -> list[tuple]:
    runs = {p: [_columns(model, s, p) for s in range(seeds)] for p in ("float32", "float64")}
    layers = list(runs["float64"][0])
    out = []
    for col in COLUMNS:
        rel, ratios, differ, cells = [], [], 0, 0
        for name in layers:
            f64 = np.array([runs["float64"][s][name][col] for s in range(seeds)], dtype=float)
            f32 = np.array([runs["float32"][s][name][col] for s in range(seeds)], dtype=float)
            if not (np.isfinite(f64).all() and np.isfinite(f32).all()):
                continue
            cells += seeds
            dev = float(np.abs(f32 - f64).max())
            spread = float(np.std(f64, ddof=1))
            rel.append(dev / (np.abs(f64).mean() or 1.0))
            ratios.append(dev / spread if spread > 0 else (0.0 if dev == 0 else np.inf))
            differ += int(np.count_nonzero(f32 != f64))
        out.append((col, max(rel), float(np.median(ratios)), max(ratios), differ, cells))
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--models", default="minilm,lite0")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    lines = []
    for name in args.models.split(","):
        rows = study(_model(name), args.seeds)
        lines += [f"\n{name}, {args.seeds} seeds\n",
                  "| column | max rel. dev f32−f64 | dev / seed spread: median | worst layer | cells differing |",
                  "|---|---|---|---|---|"]
        lines += [f"| {c} | {d:.1e} | {m:.1e} | {r:.1e} | {n} of {k} |" for c, d, m, r, n, k in rows]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
