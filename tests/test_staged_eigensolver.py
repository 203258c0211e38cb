"""The staged eigensolver of large Gram matrices (issue 15 item 2): dense → band in fixed tiles, band →
tridiagonal by bulge chasing with each step's independent tasks shared by the threads, then sterf.

Its results must be bit-identical for every thread count, equal to an SVD's squared singular values to
round-off, and its bulge chasing must reproduce LAPACK's serial ``sytrd_sb2st`` to the last bit (it runs
LAPACK's own tasks in LAPACK's order, only sharing each step's independent tasks among threads)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hts._native import _core

THREADS = (1, 2, 3, 4)


def staged(w, threads, band, precision="float64"):
    """Eigenvalues through the staged solver whatever the size (Eigen's small-matrix solver off)."""
    return _core.gram_eigenvalues([w], precision=precision, threads=threads, eigen_solver_max=0, staged_min=1,
                                  staged_band=band)[0]


def reference(w):
    return np.sort(np.linalg.svd(np.asarray(w, np.float64), compute_uv=False) ** 2)


def matrix(kind, rows, cols, seed, dtype):
    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        w = rng.standard_normal((rows, cols))
    elif kind == "heavy":
        w = rng.standard_t(3, (rows, cols))
    elif kind == "zeros":
        w = np.zeros((rows, cols))
    elif kind == "rank1":
        w = np.outer(rng.standard_normal(rows), rng.standard_normal(cols))
    else:  # repeated: duplicated columns give repeated (and zero) eigenvalues
        w = np.repeat(rng.standard_normal((rows, max(1, cols // 3))), 3, axis=1)[:, :cols]
        if w.shape[1] < cols:
            w = np.hstack([w, np.zeros((rows, cols - w.shape[1]))])
    return w.astype(dtype)


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 120), cols=st.integers(1, 120), band=st.integers(1, 12), seed=st.integers(0, 2**31),
       kind=st.sampled_from(["gaussian", "heavy", "zeros", "rank1", "repeated"]),
       precision=st.sampled_from(["float64", "float32"]))
def test_bit_identical_for_every_thread_count_and_close_to_svd(rows, cols, band, seed, kind, precision):
    w = matrix(kind, rows, cols, seed, np.float64 if precision == "float64" else np.float32)
    got = [staged(w, t, band, precision) for t in THREADS]
    for g in got[1:]:
        np.testing.assert_array_equal(g, got[0])
    want = reference(w)
    scale = max(float(want[-1]), np.finfo(np.float64).tiny)
    eps = np.finfo(np.float64 if precision == "float64" else np.float32).eps
    assert got[0].shape == (min(rows, cols),)
    assert np.all(got[0] >= 0)
    assert np.max(np.abs(got[0] - want)) <= 50 * min(rows, cols) * eps * scale


def random_band(n, kd, seed, dtype):
    rng = np.random.default_rng(seed)
    band = rng.standard_normal((n, kd + 1))
    for c in range(n):  # entries below the matrix's last row do not exist
        band[c, max(0, n - c):] = 0
    return band.astype(dtype)


def dense_from_band(band, kd):
    n = band.shape[0]
    a = np.zeros((n, n))
    for c in range(n):
        for r in range(kd + 1):
            if c + r < n:
                a[c + r, c] = a[c, c + r] = band[c, r]
    return a


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 260), kd=st.integers(0, 24), seed=st.integers(0, 2**31),
       dtype=st.sampled_from([np.float64, np.float32]))
def test_bulge_chasing_reproduces_lapack_serial_sb2st_bit_for_bit(n, kd, seed, dtype):
    band = random_band(n, kd, seed, dtype)
    want = _core._band_eigenvalues(band, kd, lapack_serial=True)
    for t in THREADS:
        np.testing.assert_array_equal(_core._band_eigenvalues(band, kd, threads=t), want)
    dense = np.linalg.eigvalsh(dense_from_band(band.astype(np.float64), kd))
    tol = (1e-12 if dtype == np.float64 else 1e-4) * max(1.0, np.abs(dense).max()) * max(1, kd)
    np.testing.assert_allclose(np.sort(want), dense, atol=tol, rtol=0)


def test_bad_band_arguments_are_errors():
    with pytest.raises(ValueError):
        _core._band_eigenvalues(np.zeros((5, 3)), 3)
    with pytest.raises(ValueError):
        _core._band_eigenvalues(np.zeros((5, 3)), 2, threads=-1)


def test_default_path_for_a_large_gram_matches_numpy_and_every_thread_count(rng):
    """A 2600-side Gram takes the staged path by default (from 2560 in float64): equal to numpy's
    eigvalsh to round-off and the same bits at 1 and 2 threads."""
    w = rng.standard_t(4, (2900, 2600))
    one = _core.gram_eigenvalues([w], threads=1)[0]
    two = _core.gram_eigenvalues([w], threads=2)[0]
    np.testing.assert_array_equal(one, two)
    want = np.linalg.eigvalsh(w.T @ w)
    assert np.max(np.abs(one - want)) <= 1e-13 * want[-1]
    old = _core.gram_eigenvalues([w], threads=1, staged_min=10**9)[0]  # LAPACK's serial syevd_2stage
    assert np.max(np.abs(one - old)) <= 1e-13 * want[-1]


def test_a_stop_lands_inside_the_staged_solver(rng):
    w = rng.standard_normal((3000, 3000))
    flag = _core.StopFlag()
    timer = threading.Timer(0.2, flag.set)
    timer.start()
    try:
        with pytest.raises(_core.Stopped):
            _core.gram_eigenvalues([w], threads=1, staged_min=2, stop=flag)
    finally:
        timer.cancel()
