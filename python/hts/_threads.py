"""How many native threads a call may use."""

from __future__ import annotations

import os


def available_cores() -> int:
    """Cores this process may run on (CPU affinity where the OS reports it, else the CPU count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def resolve_threads(threads: int | None) -> int:
    """The thread count for one native call.

    ``None`` means every core this process may use, lowered by ``OMP_NUM_THREADS`` when that is set to a
    positive integer. An explicit count must be >= 1 and is capped at the available cores.
    """
    cores = available_cores()
    if threads is None:
        env = os.environ.get("OMP_NUM_THREADS", "").strip().split(",")[0]
        if env.isdigit() and int(env) > 0:
            return min(cores, int(env))
        return cores
    if isinstance(threads, bool) or not isinstance(threads, int):
        raise TypeError(f"threads must be an int or None, got {type(threads).__name__}")
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    return min(threads, cores)
