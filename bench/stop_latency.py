"""Stop latency of a running kernel call (issue 19 item 12): how long after ``cancel`` is set (here: the
kernel's StopFlag, which ``hts.analyze`` sets within 10 ms of the cancel event or the time budget) the
eigenvalue call gives up, versus what it was before the flag existed (the call ran to its end: the remaining
time of the call).

For each shape: the full call's time T (no stop), then the flag set at evenly spread moments t in (0, T); the
latency is the time from t to the Stopped exception. The worst case is a stop during the longest single
LAPACK call (sterf or syevd of the Gram matrix, or BLAS on one 512-wide tile).

    python bench/stop_latency.py            # LLaMA-7B MLP shape 11008x4096 at float64 and two smaller ones
    python bench/stop_latency.py --quick    # the smaller shapes only
"""

from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import markdown_table, parse_mode, write_report  # noqa: E402

from hts._native import _core  # noqa: E402


def gram_call(w: np.ndarray, threads: int):
    return lambda flag=None: _core.gram_eigenvalues([w], "float64", threads, stop=flag)


def conv_call(kernel: np.ndarray, n: int, threads: int):
    return lambda flag=None: _core.conv_operator_eigenvalues(kernel, n, n, "float64", threads, stop=flag)


def stop_at(call, at: float) -> float:
    """Seconds from setting the flag at ``at`` s into the call until the call returns (Stopped or done)."""
    flag = _core.StopFlag()
    set_at = []

    def fire():
        set_at.append(time.perf_counter())
        flag.set()

    timer = threading.Timer(at, fire)
    timer.start()
    try:
        call(flag)
    except _core.Stopped:
        pass
    end = time.perf_counter()
    timer.cancel()
    return end - set_at[0] if set_at else 0.0


def main() -> None:
    mode, out = parse_mode(__doc__.splitlines()[0], os.path.join(os.path.dirname(__file__), "results",
                                                                 "stop_latency.md"))
    shapes = [(11008, 1024), (24000, 1200)] if mode != "full" else [(11008, 1024), (24000, 1200), (11008, 4096)]
    if mode == "smoke":
        shapes = [(3000, 600)]
    moments = 3 if mode == "smoke" else 6 if mode == "quick" else 12
    threads = min(2, os.cpu_count() or 1)
    rng = np.random.default_rng(0)
    # conv_method="fft": one kernel call per conv layer, the whole operator spectrum (ResNet's widest 3x3 conv
    # on its 7x7 feature map in full mode; smaller in quick and smoke)
    conv = (512, 7) if mode == "full" else (256, 12) if mode == "quick" else (64, 8)
    calls = [(f"{r}x{c}", gram_call(rng.standard_normal((r, c)), threads)) for r, c in shapes]
    calls.append((f"conv {conv[0]}x{conv[0]}x3x3 on {conv[1]}x{conv[1]} (fft)",
                  conv_call(rng.standard_normal((conv[0], conv[0], 3, 3)), conv[1], threads)))
    rows = []
    for label, call in calls:
        t0 = time.perf_counter()
        call()
        full = time.perf_counter() - t0
        lat = [stop_at(call, full * (k + 0.5) / moments) for k in range(moments)]
        before = [full * (1 - (k + 0.5) / moments) for k in range(moments)]
        rows.append([label, str(threads), f"{full:.2f}", f"{np.median(before):.2f}",
                     f"{max(before):.2f}", f"{np.median(lat):.3f}", f"{max(lat):.3f}",
                     f"{max(before) / max(max(lat), 1e-9):.0f}x"])
        print(rows[-1], flush=True)
    table = markdown_table(["float64 call", "threads", "full call s", "before: median s", "before: worst s",
                            "now: median s", "now: worst s", "worst-case ratio"], rows)
    note = (f"Stop moments: {moments} evenly spread over each call. 'before' is the time the call still had to "
            "run (it could not be interrupted); 'now' is measured from setting the StopFlag to the call's "
            "return. Gram sides from 2560 (float64) use the staged eigensolver, which reads the flag between "
            "panels and every 512 bulge-chasing tasks; the longest uninterruptible calls left are one 512-wide "
            "Gram tile, one tridiagonal solve (sterf) and, below that side, LAPACK's syevd of the whole Gram "
            "matrix. A rank-deficient matrix's SVD refine (gesdd) is also one call: the flag is read before it. "
            "The conv-operator kernel reads the flag before each frequency and each eigensolve: its longest "
            "uninterruptible call is one frequency's herk or heevd (min(out, in) wide).")
    write_report("Stop latency of a running kernel call", mode != "full", [table, note], out)


if __name__ == "__main__":
    main()
