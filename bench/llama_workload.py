"""LLaMA checkpoint workload for the suite: ``bench/llama_checkpoint.py`` (issue 5) measured as a Section.

    python bench/llama_workload.py [--quick] [--out bench/results/llama_workload.md]

Uses that script's own pieces — ``generate`` (a sharded BF16 safetensors checkpoint with LLaMA-7B shapes),
``measure`` (``hts.analyze(folder)`` in a fresh process: peak RSS and time per layer) and ``floors`` (the hts
kernel on the same shape in memory, and scipy's Gram + ``eigh(driver="evd")``) — so the numbers are the ones
``python bench/llama_checkpoint.py`` reports. The checkpoint is generated once into the temporary folder
(``hts-bench-llama-<layers>``, about 0.9 GB per decoder layer plus 0.5 GB) and reused by later runs.
"""

from __future__ import annotations

import os
import tempfile
import time

from _common import bench_dir, parse_mode, thread_counts, write_standalone
from _report import Goal, Section, Table, fmt_unit, ratio

LAYERS = {"quick": 1, "full": 2}


def checkpoint(layers: int) -> tuple[str, float]:
    """The checkpoint folder (generated when missing) and the seconds spent generating it (0 when reused)."""
    import llama_checkpoint as lc

    folder = os.path.join(tempfile.gettempdir(), f"hts-bench-llama-{layers}")
    if os.path.isfile(os.path.join(folder, "model.safetensors.index.json")):
        return folder, 0.0
    t0 = time.perf_counter()
    lc.generate(folder, layers)
    return folder, time.perf_counter() - t0


def kernel_floor(shapes: list, threads: int) -> dict:
    """Quick runs: only the hts kernel on an in-memory float32 matrix per shape (scipy's floor left out)."""
    import numpy as np

    from hts import spectra

    rng = np.random.default_rng(1)
    out = {}
    for shape in shapes:
        w = (rng.standard_t(4, size=shape) * 0.02).astype(np.float32)
        t0 = time.perf_counter()
        spectra.eigenvalues(w, threads=threads)
        out[shape] = (time.perf_counter() - t0, None)
    return out


def run(mode: str) -> Section:
    import llama_checkpoint as lc

    layers = LAYERS.get(mode, 1)
    folder, generated = checkpoint(layers)
    size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
    threads = thread_counts() if mode == "full" else thread_counts()[-1:]
    summary = Table("Whole checkpoint: hts.analyze(folder) in a fresh process",
                    [("threads", "int"), ("matrices", "int"), ("total (s)", "s"), ("peak RSS (MB)", "mb"),
                     ("on disk (MB)", "mb"), ("torch imported", "text")])
    per_layer = None
    peaks = []
    for t in threads:
        result = lc.measure(folder, t)
        peaks.append(result["peak_rss"])
        summary.add(t, len(result["rows"]), result["total"], result["peak_rss"] / 1e6, size / 1e6,
                    str(result["torch_imported"]))
        if t == threads[-1]:
            shapes = sorted({tuple(int(x) for x in r["shape"].split("x")) for r in result["rows"]})
            floor = lc.floors(shapes, t) if mode == "full" else kernel_floor(shapes, t)
            per_layer = Table(f"Time per layer, {t} threads (s)",
                              [("tensor", "text"), ("shape", "text"), ("stored", "text"),
                               ("hts analyze (read + eig + fit)", "s"), ("hts kernel, in memory", "s"),
                               ("scipy Gram + eigh(evd)", "s"), ("analyze ÷ kernel", "r"), ("scipy / analyze", "x"),
                               ("alpha", "r")])
            for r in result["rows"]:
                k, lap = floor[tuple(int(x) for x in r["shape"].split("x"))]
                per_layer.add(r["key"], r["shape"], r["dtype"], r["time"], k, lap, ratio(r["time"], k),
                              ratio(lap, r["time"]), r["alpha"])
            per_layer.notes = ("Per-layer analyze time comes from the analysis's own `time` column; the kernel "
                               "and scipy floors are single timings per shape (float32 in memory → float64 Gram), "
                               "the same as `python bench/llama_checkpoint.py`.")
    summary.notes = (f"{layers} LLaMA-7B decoder layer(s) + embeddings + lm_head, BF16, sharded safetensors in "
                     f"`{folder}` ({'generated in ' + f'{generated:.0f} s' if generated else 'reused from an earlier run'}"
                     "). Peak RSS is the analysing process's `ru_maxrss`."
                     + (" Quick mode: one decoder layer, one thread count, no scipy floor; the full run uses two "
                        "layers, 1 and 2 threads and adds scipy's Gram + eigh(evd) per shape." if mode != "full" else ""))
    worst = max(peaks)
    goals = [Goal("LLaMA-7B-shaped BF16 checkpoint: peak RSS (issue 5)", f"≤ {fmt_unit(lc.GOAL_BYTES / 1e6, 'mb')}",
                  worst / 1e6, "mb", worst <= lc.GOAL_BYTES, "every thread count")]
    return Section("llama_checkpoint", "LLaMA-7B-shaped sharded BF16 checkpoint",
                   [summary] + ([per_layer] if per_layer else []), goals)


def main() -> None:
    mode, out = parse_mode(__doc__.splitlines()[0], os.path.join(bench_dir(), "results", "llama_workload.md"))
    write_standalone(run(mode), mode, out)


if __name__ == "__main__":
    main()
