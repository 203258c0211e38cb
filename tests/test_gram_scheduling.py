"""How the kernel splits Gram products over threads: tall matrices in slabs of the large side (partial Gram
matrices summed in slab order), mid and large ones in output tiles, the rest whole; all in one task pool
where whoever finishes a matrix's last part runs its eigensolve. Every split is chosen from the shape, dtype
and layout alone, so results must be bit-identical for every thread count and whatever else is in the
batch, and agree with an SVD. Forced on small matrices here through the tuning knobs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hts._native import _core

SLABS = dict(slab_min_cost=0)  # split every matrix whose large side is >= 8x its small side
TILES = dict(tiled_gram_min=24, gram_tile=16)


def _eig(arrays, threads=2, precision="float64", **knobs):
    return _core.gram_eigenvalues(list(arrays), precision, threads, **knobs)


def _svd_eigs(w):
    return np.sort(np.linalg.svd(np.asarray(w, dtype=np.float64), compute_uv=False) ** 2)


def _assert_close_to_svd(got, w, factor=16):
    ref = _svd_eigs(w)
    np.testing.assert_allclose(got, ref, rtol=0, atol=factor * sum(w.shape) * np.finfo(float).eps * ref[-1])


def _layouts(w):
    """The same matrix as C order, Fortran order, a strided view and a negative-stride view."""
    padded = np.zeros((w.shape[0] * 2, w.shape[1] + 3), dtype=w.dtype)
    padded[::2, 1:-2] = w
    flipped = np.ascontiguousarray(w[::-1, ::-1])[::-1, ::-1]
    return {"C": np.ascontiguousarray(w), "F": np.asfortranarray(w), "strided": padded[::2, 1:-2],
            "negative": flipped}


@pytest.mark.parametrize("shape", [(900, 40), (40, 900), (333, 41), (8 * 17 + 5, 17)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_slabs_match_svd_and_the_unsplit_product(shape, dtype):
    rng = np.random.default_rng(sum(shape))
    w = rng.standard_t(4, size=shape).astype(dtype)
    split = _eig([w], **SLABS)[0]
    whole = _eig([w], slab_min_cost=-1)[0]
    _assert_close_to_svd(split, w)
    np.testing.assert_allclose(split, whole, rtol=0, atol=8 * sum(shape) * np.finfo(float).eps * whole[-1])


@pytest.mark.parametrize("layout", ["C", "F", "strided", "negative"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_slabs_do_not_depend_on_threads_or_layout(layout, dtype):
    rng = np.random.default_rng(7)
    w = _layouts(rng.standard_normal((1000, 45)).astype(dtype))[layout]
    one = _eig([w], threads=1, **SLABS)[0]
    for threads in (2, 3, 8):
        np.testing.assert_array_equal(_eig([w], threads=threads, **SLABS)[0], one)
    _assert_close_to_svd(one, w)


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_mixed_batch_is_bit_identical_to_each_matrix_alone(precision):
    """Tiles, slabs and whole products in one pool: each result equals the matrix analysed on its own."""
    rng = np.random.default_rng(11)
    batch = [rng.standard_normal((60, 50)).astype(np.float32),  # tiles (small side >= 24)
             rng.standard_normal((700, 20)),                   # slabs
             rng.standard_normal((30, 12)),                    # whole
             rng.standard_normal((3, 40, 30)).astype(np.float32),  # a stack: tiles per slice
             rng.standard_normal((16, 500)).astype(np.float32)]    # slabs, wide
    knobs = {**SLABS, **TILES}
    alone = [_eig([w], threads=1, precision=precision, **knobs)[0] for w in batch]
    for threads in (1, 2, 4):
        got = _eig(batch, threads=threads, precision=precision, **knobs)
        for g, a in zip(got, alone):
            np.testing.assert_array_equal(g, a)
    if precision == "float64":
        for w, g in zip(batch, alone):
            for s, gs in zip(w.reshape(-1, *w.shape[-2:]), np.atleast_2d(g)):
                _assert_close_to_svd(gs, s)


def test_default_split_of_a_tall_embedding_shape():
    """The default knobs split a vocabulary-sized embedding (n²k >= 1e8) and keep it exact."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((8000, 120)).astype(np.float32)  # 1.15e8 multiply-adds, 8 slabs
    got = _eig([w], threads=2)[0]
    np.testing.assert_array_equal(got, _eig([w], threads=1)[0])
    np.testing.assert_array_equal(got, _eig([w], threads=1, **SLABS)[0])  # the default did split it
    _assert_close_to_svd(got, w)


def test_rank_deficient_slab_matrix_is_refined_by_svd():
    rng = np.random.default_rng(6)
    w = (rng.standard_normal((900, 5)) @ rng.standard_normal((5, 60))).astype(np.float32)  # rank 5
    got = _eig([w], **SLABS)[0]
    assert np.count_nonzero(got > 1e-10 * got[-1]) == 5
    np.testing.assert_allclose(got, _svd_eigs(w), rtol=0, atol=1e-12 * got[-1])


def test_overflow_in_the_pool_names_the_same_matrix_for_every_thread_count():
    """Two matrices overflow float64 (one tiled, one in slabs): the error names one matrix, the same one
    whatever the threads; the batch's other matrices do not change that."""
    rng = np.random.default_rng(2)
    big = np.full((40, 30), 1e160)
    tall = np.full((800, 20), 1e160)
    batch = [rng.standard_normal((50, 40)), tall, rng.standard_normal((600, 10)), big]
    messages = set()
    for threads in (1, 2, 3, 8):
        with pytest.raises(ValueError, match="overflow") as err:
            _eig(batch, threads=threads, **SLABS, **TILES)
        messages.add(str(err.value))
    assert len(messages) == 1


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 30), ratio=st.integers(8, 40), wide=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]), threads=st.integers(2, 5),
       seed=st.integers(0, 2**32 - 1))
def test_property_slabs_thread_invariant_and_exact(n, ratio, wide, dtype, threads, seed):
    rng = np.random.default_rng(seed)
    shape = (n, n * ratio + rng.integers(0, 7)) if wide else (n * ratio + rng.integers(0, 7), n)
    w = (rng.standard_normal(shape) * 10.0 ** rng.uniform(-3, 3)).astype(dtype)
    one = _eig([w], threads=1, **SLABS)[0]
    np.testing.assert_array_equal(_eig([w], threads=threads, **SLABS)[0], one)
    _assert_close_to_svd(one, w, factor=32)


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 60), cols=st.integers(1, 60), dtype=st.sampled_from([np.float32, np.float64]),
       layout=st.sampled_from(["C", "F", "strided", "negative"]), bad=st.integers(1, 20),
       seed=st.integers(0, 2**32 - 1))
def test_property_nonfinite_count_in_every_layout(rows, cols, dtype, layout, bad, seed):
    """The up-front NaN/Inf scan (a bit-pattern fast path along contiguous lines) counts exactly."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((rows, cols)).astype(dtype)
    flat = w.reshape(-1)
    idx = rng.choice(flat.size, size=min(bad, flat.size), replace=False)
    flat[idx] = rng.choice(np.array([np.nan, np.inf, -np.inf], dtype=dtype), size=idx.size)
    view = _layouts(w)[layout]
    with pytest.raises(ValueError, match=rf"\b{idx.size} non-finite entries"):
        _eig([view], threads=2)
