"""Large float32 (or strided) matrices in float64 precision: the Gram matrix is built from converted chunks
instead of one converted copy (bounded memory). Forced here on small matrices through the tuning knobs."""

from __future__ import annotations

import numpy as np
import pytest

from hts._native import _core


def _eig(w, threads=2, **knobs):
    return _core.gram_eigenvalues([w], "float64", threads, **knobs)[0]


@pytest.mark.parametrize("shape", [(700, 130), (130, 700), (257, 256)])
@pytest.mark.parametrize("chunk_rows", [1, 7, 64, 10_000])
def test_chunked_matches_svd_and_whole_copy(shape, chunk_rows):
    rng = np.random.default_rng(sum(shape) + chunk_rows)
    w = rng.standard_t(3, size=shape).astype(np.float32)
    n = min(shape)
    knobs = dict(chunked_convert_min=0, chunk_bytes=chunk_rows * n * 8, tiled_gram_min=64, gram_tile=48)
    chunked = _eig(w, **knobs)
    whole = _eig(w, tiled_gram_min=64, gram_tile=48)
    svd = np.sort(np.linalg.svd(w.astype(np.float64), compute_uv=False) ** 2)
    tol = 8 * sum(shape) * np.finfo(float).eps * svd[-1]
    np.testing.assert_allclose(chunked, svd, rtol=0, atol=tol)
    np.testing.assert_allclose(chunked, whole, rtol=0, atol=tol)
    for threads in (1, 3):
        np.testing.assert_array_equal(_eig(w, threads=threads, **knobs), chunked)


def test_chunked_strided_float64_view():
    rng = np.random.default_rng(5)
    base = rng.standard_normal((300, 400))
    view = base[::2, ::3]  # neither rows nor columns contiguous: BLAS cannot use it as is
    knobs = dict(chunked_convert_min=0, chunk_bytes=9 * 8 * 134, tiled_gram_min=32, gram_tile=40)
    got = _eig(view, **knobs)
    svd = np.sort(np.linalg.svd(view, compute_uv=False) ** 2)
    np.testing.assert_allclose(got, svd, rtol=0, atol=8 * 284 * np.finfo(float).eps * svd[-1])


def test_chunked_rank_deficient_is_refined_like_the_whole_path():
    rng = np.random.default_rng(6)
    w = (rng.standard_normal((400, 20)) @ rng.standard_normal((20, 100))).astype(np.float32)  # rank 20
    knobs = dict(chunked_convert_min=0, chunk_bytes=33 * 100 * 8, tiled_gram_min=64, gram_tile=48)
    got = _eig(w, **knobs)
    svd = np.sort(np.linalg.svd(w.astype(np.float64), compute_uv=False) ** 2)
    assert np.count_nonzero(got > 1e-10 * got[-1]) == 20
    np.testing.assert_allclose(got, svd, rtol=0, atol=1e-12 * svd[-1])
