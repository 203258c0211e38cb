"""Shared helpers for the benchmarks: repeatable timing, BLAS thread control, machine description."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import time
from typing import Callable, Iterator


def median_time(fn: Callable[[], object], *, min_total: float = 0.3, max_reps: int = 7, min_reps: int = 1) -> float:
    """Median wall time of fn() over repeated runs (one warm-up run first for calls faster than 1 s)."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    times = [first] if first > 1.0 else []
    while len(times) < max_reps and (len(times) < min_reps or sum(times) < min_total):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


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


def machine() -> str:
    """One paragraph: CPU, cores, libraries."""
    import numpy as np

    import hts

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    parts = [f"CPU: {cpu}, {cores} usable cores", f"Python {platform.python_version()}",
             f"hts {hts.__version__} ({hts.spectra.kernel_info()['blas']})", f"numpy {np.__version__}"]
    try:
        import scipy

        parts.append(f"scipy {scipy.__version__}")
    except ImportError:
        pass
    try:
        import threadpoolctl

        blas = {i["internal_api"] + " " + i.get("version", "") for i in threadpoolctl.threadpool_info()
                if i["user_api"] == "blas"}
        parts.append("numpy/scipy BLAS: " + ", ".join(sorted(blas)))
    except ImportError:
        parts.append("threadpoolctl missing: numpy/scipy BLAS threads NOT limited")
    return "; ".join(parts)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def write_report(title: str, quick: bool, parts: list, out: str | None) -> str:
    """Print the report (title with date, machine description, parts) and write it to ``out``."""
    import datetime

    text = "\n".join([f"## {title} — {datetime.date.today()}{' (quick)' if quick else ''}\n", machine() + "\n",
                      *parts])
    print("\n" + text)
    if out:
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "w") as f:
            f.write(text)
    return text
