"""Are LAPACK's two-stage values-only eigensolvers bit-identical across OpenBLAS thread counts, and faster?

    python bench/two_stage_threads.py [--n 4096] [--k 11008] [--reps 3] [--dtypes f64,f32] [--out ...]

hts's kernel calls ``dsyevd_2stage`` / ``ssyevd_2stage`` (JOBZ='N') from the scipy-openblas32 build it links
(``cpp/lapack.cpp``) with OpenBLAS pinned to one thread. This script loads that same shared library with
ctypes, builds the float64 (or float32) Gram matrix WᵀW of a Student-t(4) W (k×n), and solves it with
OpenBLAS at 1 and at 2 threads, alternating, ``--reps`` times: it reports whether every 2-thread result is
bit-identical to the 1-thread one, and the median times. The first stage (dense → band, ``sytrd_sy2sb``) is
BLAS-3 and runs on OpenBLAS's threads; the second (band → tridiagonal, ``sytrd_sb2st``) is threaded only by
OpenMP builds (scipy-openblas32 is a pthreads build: serial); ``sterf`` is serial.
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine, markdown_table  # noqa: E402


def library() -> ctypes.CDLL:
    import scipy_openblas32

    return ctypes.CDLL(sorted(glob.glob(os.path.join(scipy_openblas32.get_lib_dir(), "libscipy_openblas*.so*")))[0])


def solve(lib, g: np.ndarray, threads: int) -> tuple[np.ndarray, float]:
    """Ascending eigenvalues of g by syevd_2stage(JOBZ='N', UPLO='L') at ``threads`` OpenBLAS threads."""
    lib.scipy_openblas_set_num_threads(threads)
    routine = lib.scipy_dsyevd_2stage_ if g.dtype == np.float64 else lib.scipy_ssyevd_2stage_
    n = g.shape[0]
    a = np.asfortranarray(g.copy())
    w = np.zeros(n, g.dtype)
    size, info, query, iquery = ctypes.c_int(n), ctypes.c_int(0), ctypes.c_int(-1), ctypes.c_int(0)
    wquery = np.zeros(1, g.dtype)
    ptr = lambda x: x.ctypes.data_as(ctypes.c_void_p)  # noqa: E731

    def call(work, lwork, iwork, liwork):
        routine(b"N", b"L", ctypes.byref(size), ptr(a), ctypes.byref(size), ptr(w), work, ctypes.byref(lwork),
                iwork, ctypes.byref(liwork), ctypes.byref(info), ctypes.c_size_t(1), ctypes.c_size_t(1))

    call(ptr(wquery), query, ctypes.byref(iquery), query)
    lwork, liwork = ctypes.c_int(int(wquery[0]) + 1), ctypes.c_int(max(1, iquery.value))
    work, iwork = np.zeros(lwork.value, g.dtype), np.zeros(liwork.value, np.int32)
    t0 = time.perf_counter()
    call(ptr(work), lwork, ptr(iwork), liwork)
    elapsed = time.perf_counter() - t0
    if info.value != 0:
        raise RuntimeError(f"syevd_2stage info={info.value}")
    return w, elapsed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--k", type=int, default=11008)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--dtypes", default="f64,f32")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                  "two_stage_threads.md"))
    args = ap.parse_args(argv)
    lib = library()
    rng = np.random.default_rng(0)
    rows = []
    for name in args.dtypes.split(","):
        dtype = {"f64": np.float64, "f32": np.float32}[name]
        w = (rng.standard_t(4, size=(args.k, args.n)) * 0.02).astype(dtype)
        g = w.T @ w
        del w
        ref, t1 = solve(lib, g, 1)
        times, same = {1: [t1], 2: []}, True
        for _ in range(args.reps):
            for threads in (2, 1):
                ev, dt = solve(lib, g, threads)
                times[threads].append(dt)
                same &= ev.tobytes() == ref.tobytes()
        m1, m2 = statistics.median(times[1]), statistics.median(times[2])
        rows.append([name, f"{args.n}", f"{args.k}", str(args.reps), "yes" if same else "NO", f"{m1:.2f}",
                     f"{m2:.2f}", f"{m1 / m2:.2f}", f"{os.getloadavg()[0]:.1f}"])
        print(rows[-1], file=sys.stderr, flush=True)
    lib.scipy_openblas_set_num_threads(1)
    text = "\n".join([f"# Two-stage eigensolver across OpenBLAS thread counts — {time.strftime('%Y-%m-%d')}\n",
                      machine() + "\n",
                      markdown_table(["dtype", "Gram side n", "rows k", "reps", "2 threads bit-identical to 1",
                                      "1 thread median s", "2 threads median s", "speed-up", "load avg"], rows),
                      "\nThe load average is the 1-minute average at the end of each row: OpenBLAS's worker "
                      "threads busy-wait, so on a machine with more runnable threads than cores its 2-thread "
                      "times collapse (see the note in bench/results/llama_7b.md)."]) + "\n"
    with open(args.out, "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
