"""Shared helpers for the benchmarks: repeatable timing, BLAS thread control, machine description, and the
command line every workload script shares (``--quick``, ``--smoke``, ``--out``)."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import statistics
import sys
import time
from typing import Callable, Iterator

from _report import markdown_table  # noqa: E402,F401 - re-exported for the scripts that import it from here

MODES = ("smoke", "quick", "full")

# Repetition budget per mode: (seconds of repeats to aim for, fewest repeats, most repeats, warm-up run).
_REPS = {"smoke": (0.0, 1, 1, False), "quick": (0.3, 3, 5, True), "full": (1.0, 3, 7, True)}
_MIN_REPS_SECONDS = 3.0  # the fewest-repeats rule yields to this: one slow call is not repeated past it


def median_time(fn: Callable[[], object], *, mode: str = "full", max_reps: int | None = None,
                min_total: float | None = None) -> float:
    """Median wall time of fn() over repeated runs.

    One warm-up run comes first for calls faster than 1 s (it counts when slower). Repeats continue until
    their sum passes the mode's budget and there are at least the mode's fewest repeats (3, unless they
    would take more than 3 s), or ``max_reps`` is reached. ``smoke`` runs fn once.
    """
    budget, fewest, most, warm = _REPS[mode]
    budget = budget if min_total is None else min_total
    most = most if max_reps is None or mode == "smoke" else max_reps
    fewest = min(fewest, most)
    times: list[float] = []
    if warm:
        t0 = time.perf_counter()
        fn()
        first = time.perf_counter() - t0
        if first > 1.0:
            times.append(first)
    while len(times) < max(1, most) and (not times or sum(times) < budget
                                          or (len(times) < fewest and sum(times) < _MIN_REPS_SECONDS)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def once(fn: Callable[[], object]) -> float:
    """Wall time of a single run (for contenders that take tens of seconds)."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


@contextlib.contextmanager
def blas_threads(n: int) -> Iterator[None]:
    """Limit numpy's/scipy's BLAS to n threads (needs threadpoolctl; otherwise a no-op, reported)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=n, user_api="blas"):
        yield


def thread_counts() -> tuple[int, ...]:
    """Thread counts every workload measures: 1 and all usable cores (2 on the project's machine)."""
    from hts import spectra

    cores = spectra.kernel_info()["cores"]
    return (1,) if cores == 1 else (1, cores)


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # noqa: BLE001 - not installed
        return None


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, or what platform knows."""
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    """CPU, cores, memory, BLAS builds and library versions, as plain data."""
    from hts import spectra

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    info: dict = {"cpu": cpu_model(), "usable_cores": cores, "logical_cpus": os.cpu_count(),
                  "platform": platform.platform(), "python": platform.python_version(),
                  "hts_blas": spectra.kernel_info()["blas"],
                  "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None}
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/meminfo") as f:
            info["memory_gib"] = round(int(f.readline().split()[1]) / 2**20, 1)
    info["versions"] = {m: _version(m) for m in ("hts", "numpy", "scipy", "torch", "weightwatcher", "powerlaw",
                                                 "threadpoolctl")}
    try:
        import numpy  # noqa: F401 - threadpoolctl only sees loaded libraries
        import scipy.linalg  # noqa: F401
        import threadpoolctl

        info["numpy_scipy_blas"] = sorted({f"{i['internal_api']} {i.get('version', '')} "
                                           f"({i.get('architecture', '?')}, {i.get('num_threads')} threads)"
                                           for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"})
    except ImportError:
        info["numpy_scipy_blas"] = ["threadpoolctl missing: numpy/scipy BLAS threads NOT limited"]
    return info


def machine() -> str:
    """One paragraph: CPU, cores, libraries."""
    i = machine_info()
    versions = ", ".join(f"{k} {v}" for k, v in i["versions"].items() if v)
    return (f"CPU: {i['cpu']}, {i['usable_cores']} usable cores, {i.get('memory_gib', '?')} GiB; "
            f"Python {i['python']}; {versions}; hts links {i['hts_blas']}; numpy/scipy BLAS: "
            + "; ".join(i["numpy_scipy_blas"]))


def parse_mode(description: str, default_out: str) -> tuple[str, str]:
    """The shared command line of a workload script: returns (mode, output Markdown path)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="fewer cases and repeats")
    parser.add_argument("--smoke", action="store_true", help="tiny inputs, one repeat: checks the plumbing only")
    parser.add_argument("--out", default=default_out, help="Markdown file to write")
    args = parser.parse_args()
    return ("smoke" if args.smoke else "quick" if args.quick else "full"), args.out


def write_standalone(section, mode: str, out: str | None) -> str:
    """A single workload's report (date, machine, its tables) printed and written to ``out``."""
    from _report import goals_markdown, section_markdown

    head = f"# {section.title} — {datetime.date.today()}{'' if mode == 'full' else f' ({mode})'}\n\n{machine()}\n"
    parts = [head, section_markdown(section)]
    if section.goals:
        parts.append("### Goals\n\n" + goals_markdown(section.goals) + "\n")
    text = "\n".join(parts)
    return _emit(text, out)


def write_report(title: str, quick: bool, parts: list, out: str | None) -> str:
    """Print a free-form report (title with date, machine description, Markdown parts) and write it to ``out``.

    Kept for scripts that build their own Markdown (bench/llama_checkpoint.py); workloads with ``run(mode)``
    use :func:`write_standalone`.
    """
    text = "\n".join([f"## {title} — {datetime.date.today()}{' (quick)' if quick else ''}\n", machine() + "\n",
                      *parts])
    return _emit(text, out)


def _emit(text: str, out: str | None) -> str:
    """Print a report and write it to ``out`` (folders created)."""
    print("\n" + text)
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w") as f:
            f.write(text)
    return text


def bench_dir() -> str:
    """This folder (for sys.path and default output paths)."""
    return os.path.dirname(os.path.abspath(__file__))


def tests_dir() -> str:
    """The repository's tests folder (tests/_models.py builds the real models)."""
    return os.path.join(bench_dir(), "..", "tests")


if bench_dir() not in sys.path:
    sys.path.insert(0, bench_dir())
