"""Threads: the GIL is released in native calls, results do not depend on thread counts or callers."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from hts import spectra


def assert_main_thread_ran_during(call) -> None:
    """Runs `call` in a worker thread while this thread ticks; fails if ticks stopped during the native call.

    With the GIL held by the native call, the ticking loop could not run at all while it lasted, so there
    would be one gap as long as the call. Released, the ticks keep coming and the largest gap is tiny.
    """
    window: dict[str, float] = {}

    def worker() -> None:
        window["start"] = time.perf_counter()
        call()
        window["end"] = time.perf_counter()

    thread = threading.Thread(target=worker)
    ticks = []
    thread.start()
    while thread.is_alive():
        ticks.append(time.perf_counter())
    thread.join()
    inside = [t for t in ticks if window["start"] <= t <= window["end"]]
    duration = window["end"] - window["start"]
    assert duration > 0.02, "the call was too short to tell"
    points = [window["start"], *inside, window["end"]]
    largest_gap = max(b - a for a, b in zip(points, points[1:]))
    assert largest_gap < 0.5 * duration, f"no Python progress for {largest_gap:.3f} s of a {duration:.3f} s call"


def test_eigenvalue_kernel_releases_the_gil(rng):
    w = rng.standard_normal((1500, 1200))
    assert_main_thread_ran_during(lambda: spectra.eigenvalues(w, threads=1))


def test_power_law_scan_releases_the_gil(rng):
    x = rng.pareto(1.5, 15000) + 1.0  # curve=True scores every candidate exactly: ~10^8 terms
    assert_main_thread_ran_during(lambda: spectra.fit_power_law(x, threads=1, curve=True))


def test_results_identical_for_every_thread_count(rng):
    batch = [rng.standard_normal((9, 64, 48)), rng.standard_normal((300, 200)), rng.standard_normal((40, 500))]
    ref = spectra.eigenvalues(batch, threads=1)
    for threads in (2, 3, 8):
        out = spectra.eigenvalues(batch, threads=threads)
        for a, b in zip(ref, out):
            np.testing.assert_array_equal(a, b)


def test_many_python_threads_calling_at_once_get_single_threaded_results(rng):
    mats = [rng.standard_t(3, size=(200 + 10 * i, 150)) for i in range(8)]
    expected = [spectra.eigenvalues(m, threads=1) for m in mats]
    fits = [spectra.fit_power_law(e) for e in expected]

    def job(i: int):
        ev = spectra.eigenvalues(mats[i], threads=2)
        return ev, spectra.fit_power_law(ev, threads=2)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(job, range(8)))
    for (ev, fit), exp_ev, exp_fit in zip(results, expected, fits):
        np.testing.assert_array_equal(ev, exp_ev)
        assert fit == exp_fit


def test_errors_in_worker_threads_reach_the_caller(rng):
    stack = rng.standard_normal((64, 20, 20))
    stack[40, 3, 3] = np.nan
    stack[50, 0, 0] = np.inf
    for threads in (1, 2, 4):
        with pytest.raises(ValueError, match="slice 40: 1 non-finite"):
            spectra.eigenvalues(stack, threads=threads)


def test_a_raised_openblas_thread_count_is_put_back_to_one(rng):
    """threadpoolctl and the like raise the thread count of every OpenBLAS in the process, hts's copy included;
    the kernel resets its copy to one thread at each call, so results and speed do not change."""
    import ctypes
    import glob
    import os

    import scipy_openblas32

    path = glob.glob(os.path.join(scipy_openblas32.get_lib_dir(), "*scipy_openblas*.so*"))[0]
    lib = ctypes.CDLL(path)
    w = rng.standard_normal((9, 300, 200))
    before = spectra.eigenvalues(w, threads=2)
    lib.scipy_openblas_set_num_threads(2)
    after = spectra.eigenvalues(w, threads=2)
    assert lib.scipy_openblas_get_num_threads() == 1
    np.testing.assert_array_equal(before, after)
