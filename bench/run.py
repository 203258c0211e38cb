"""The whole benchmark suite: every workload, all contenders side by side in one run, one report.

    python bench/run.py            # full run (about half an hour on 2 cores)
    python bench/run.py --quick    # under 10 minutes on 2 cores; the report says what it leaves out
    python bench/run.py --smoke    # seconds: tiny inputs, checks the plumbing (tests/test_bench_suite.py)
    python bench/run.py --only kernel,power_law

Writes ``latest.md`` and ``latest.json`` to ``--out-dir`` (default ``bench/results``; ``--smoke`` defaults to a
fresh temporary folder): the machine (CPU model, cores, BLAS builds, versions, load), the issue's goals with the
worst measured case of each, then one section per workload. Each workload is also a script of its own
(``python bench/kernel.py --quick``). Needs the ``[bench]`` extra; without WeightWatcher or the model
packages the columns that need them are empty and the report says why. Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import bench_dir, machine, machine_info  # noqa: E402
from _report import Section, dump_json, goals_markdown, section_markdown  # noqa: E402

# Run order: import time first (fewest modules loaded in this process), the heavy WeightWatcher imports last.
WORKLOADS = ("import_time", "kernel", "power_law", "conv_fft", "analyze", "rmt", "llama_checkpoint")
MODULES = {"llama_checkpoint": "llama_workload"}  # bench/llama_checkpoint.py (issue 5) through its suite adapter
SMOKE_SKIPS = {"llama_checkpoint": "generates a checkpoint of about 1.4 GB"}

QUICK_REDUCES = ("`--quick` reduces: kernel without 4096×4096; power law without the 100k numpy scan and with "
                 "powerlaw 1.5 at 1k only; conv without 512×512×3×3 @ 7×7; end to end with 3 WeightWatcher runs "
                 "per default cell (5 in a full run) and one per option cell, mp_fit / randomize on Lite0 and MiniLM only and not both together; RMT speed "
                 "tables without the parity checks; the LLaMA checkpoint with one decoder layer (not two), at 2 "
                 "threads only and without scipy's per-shape floor; 3 to 5 repeats (3 to 7 in a full run); 7 "
                 "fresh interpreters for the import time (15).")


def run_workload(name: str, mode: str) -> tuple[Section, float]:
    """One workload's Section and its wall time; a failure becomes a Section holding the traceback."""
    print(f"\n== {name} ({mode}) ==", flush=True)
    load0 = load_average()
    t0 = time.perf_counter()
    try:
        section = importlib.import_module(MODULES.get(name, name)).run(mode)
    except Exception:  # noqa: BLE001 - one broken workload must not lose the others' results
        section = Section(name, f"{name}: FAILED", notes="```\n" + traceback.format_exc()[-3000:] + "```",
                          failed=True)
    elapsed = time.perf_counter() - t0
    load = f"Ran {elapsed:.0f} s; load average (1 min) {load0} at its start, {load_average()} at its end."
    section.notes = f"{section.notes}\n\n{load}" if section.notes else load
    return section, elapsed


def load_average() -> float | None:
    """The 1-minute load average (None where the platform has none)."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def report(mode: str, sections: list, durations: dict, info: dict, load_end: float | None, total: float) -> str:
    """The Markdown report."""
    goals = [g for s in sections for g in s.goals]
    head = [f"# hts benchmark suite — {datetime.date.today()} ({mode} run, {total / 60:.1f} min)", "",
            "Regenerate: `python bench/run.py --quick` (or without `--quick` for the full run). " +
            (QUICK_REDUCES if mode != "full" else ""), "",
            "Machine: " + machine(), "",
            f"Load average (1 min): {info.get('load_average_1min')} at the start, {load_end} at the end. This is "
            "a shared machine: other processes compete for the cores, so timings are noisy (repeat runs differ by "
            "10–30 %, 2-thread columns more) and ratios matter more than absolute times.", "",
            "Conventions: times are medians of repeated runs (WeightWatcher's slow options: one run); \"×\" "
            "columns are contender ÷ hts at the same thread count, so above 1 hts is faster; \"÷ floor\" "
            "columns are hts ÷ the Gram + LAPACK `syevd` floor, so at most 1.2–1.25 is the goal. \"—\": not "
            "measured in this mode or missing package.", ""]
    if goals:
        head += ["## Goals of issue 8", "", goals_markdown(goals), ""]
    head += ["Workload wall times: " + ", ".join(f"{n} {d:.0f} s" for n, d in durations.items()), ""]
    return "\n".join(head + [section_markdown(s) for s in sections])


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="under 10 minutes on 2 cores")
    parser.add_argument("--smoke", action="store_true", help="tiny inputs, seconds: checks the plumbing")
    parser.add_argument("--only", help="comma-separated workloads (default: all): " + ", ".join(WORKLOADS))
    parser.add_argument("--out-dir", help="where latest.md / latest.json go (default bench/results)")
    args = parser.parse_args(argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    names = WORKLOADS if not args.only else tuple(n.strip() for n in args.only.split(","))
    unknown = set(names) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workload(s) {sorted(unknown)}; choose from {', '.join(WORKLOADS)}")
    out_dir = args.out_dir or (tempfile.mkdtemp(prefix="hts-bench-smoke-") if mode == "smoke"
                               else os.path.join(bench_dir(), "results"))
    os.makedirs(out_dir, exist_ok=True)
    info = machine_info()
    t0 = time.perf_counter()
    sections, durations = [], {}
    for name in names:
        if mode == "smoke" and name in SMOKE_SKIPS:
            sections.append(Section(name, name, notes=f"Not run with --smoke: {SMOKE_SKIPS[name]}."))
            continue
        section, durations[name] = run_workload(name, mode)
        sections.append(section)
    total = time.perf_counter() - t0
    load_end = load_average()
    text = report(mode, sections, durations, info, load_end, total)
    with open(os.path.join(out_dir, "latest.md"), "w") as f:
        f.write(text)
    dump_json({"date": datetime.datetime.now().isoformat(timespec="seconds"), "mode": mode,
               "total_seconds": total, "workload_seconds": durations, "machine": info,
               "load_average_1min_end": load_end, "goals": [g for s in sections for g in s.goals],
               "sections": sections}, os.path.join(out_dir, "latest.json"))
    print(f"\nwrote {os.path.join(out_dir, 'latest.md')} and latest.json ({total / 60:.1f} min)")
    failed = [s.name for s in sections if s.failed]
    if failed:
        print("FAILED workloads: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
