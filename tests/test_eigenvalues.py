"""hts.spectra.eigenvalues against numpy's SVD: shapes, dtypes, strides, degenerate and hostile input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hts import spectra

EPS = {np.float64: np.finfo(np.float64).eps, np.float32: np.finfo(np.float32).eps}


def svd_eigenvalues(w: np.ndarray) -> np.ndarray:
    """Reference: ascending squared singular values, float64 LAPACK gesdd."""
    return np.sort(np.linalg.svd(np.asarray(w, dtype=np.float64), compute_uv=False) ** 2)


def tolerance(shape: tuple[int, int], lam_max: float, precision: str) -> float:
    """Absolute error allowed for every eigenvalue.

    Forming G = WᵀW rounds each entry by at most ~k·eps·‖w_i‖·‖w_j‖ (k = the larger side), so by Weyl's
    theorem every eigenvalue moves by at most ~‖E‖₂ <= c·(N + M)·eps·λ_max; the symmetric eigensolver is
    backward stable and adds O(M·eps·λ_max). The SVD reference has its own error of the same order. Small
    eigenvalues therefore have *absolute*, not relative, accuracy — that is the price of the Gram route.
    """
    eps = EPS[np.float64 if precision == "float64" else np.float32]
    return 8.0 * (shape[0] + shape[1]) * eps * lam_max + 1e-300


def assert_matches_svd(w: np.ndarray, got: np.ndarray, precision: str = "float64") -> None:
    ref = svd_eigenvalues(w)
    assert got.shape == ref.shape
    assert got.dtype == (np.float64 if precision == "float64" else np.float32)
    assert np.all(got >= 0)
    assert np.all(np.diff(got) >= 0), "eigenvalues must be ascending"
    tol = tolerance(w.shape, float(ref[-1]) if ref.size else 0.0, precision)
    np.testing.assert_allclose(got.astype(np.float64), ref, rtol=0, atol=tol)


# ----------------------------------------------------------------------------------------------------------
# Property tests
# ----------------------------------------------------------------------------------------------------------

KINDS = ("gaussian", "heavy", "zeros", "rank_deficient", "constant", "one_hot")


@st.composite
def matrices(draw, max_side: int = 48, max_exponent: int = 30) -> np.ndarray:
    """A random matrix with a random value kind, scale, dtype, byte order and memory layout.

    Scales run over 10^±max_exponent: squares must stay normal numbers in the precision computed in.
    """
    n = draw(st.integers(1, max_side))
    m = draw(st.integers(1, max_side))
    kind = draw(st.sampled_from(KINDS))
    scale = 10.0 ** draw(st.integers(-max_exponent, max_exponent))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    # Draw a bigger parent so that strided views have gaps.
    base = (2 * n, 3 * m)
    if kind == "gaussian":
        w = rng.standard_normal(base)
    elif kind == "heavy":
        w = rng.standard_t(2.5, size=base)
    elif kind == "zeros":
        w = np.zeros(base)
    elif kind == "rank_deficient":
        r = draw(st.integers(1, max(1, min(n, m) - 1)))
        w = rng.standard_normal((base[0], r)) @ rng.standard_normal((r, base[1]))
    elif kind == "constant":
        w = np.full(base, rng.standard_normal())
    else:
        w = np.zeros(base)
        w[rng.integers(0, base[0]), rng.integers(0, base[1])] = 1.0
    w = (w * scale).astype(dtype)
    layout = draw(st.sampled_from(["c", "f", "transposed", "strided", "negative", "big_endian"]))
    if layout == "c":
        return np.ascontiguousarray(w[:n, :m])
    if layout == "f":
        return np.asfortranarray(w[:n, :m])
    if layout == "transposed":
        return np.ascontiguousarray(w[:m, :n]).T
    if layout == "strided":
        return w[::2, ::3][:n, :m]
    if layout == "negative":
        return w[::-1, ::-2][:n, :m]
    return w[:n, :m].astype(w.dtype.newbyteorder(">"))


@given(w=matrices())
def test_eigenvalues_match_svd_float64(w):
    assert_matches_svd(w, spectra.eigenvalues(w))


@given(w=matrices(max_exponent=12))
def test_eigenvalues_match_svd_float32(w):
    assert_matches_svd(w, spectra.eigenvalues(w, precision="float32"), precision="float32")


@given(
    k=st.integers(1, 12),
    n=st.integers(1, 40),
    m=st.integers(1, 40),
    seed=st.integers(0, 2**32 - 1),
    layout=st.sampled_from(["stack", "conv", "transposed"]),
)
def test_stacks_match_per_slice_svd(k, n, m, seed, layout):
    rng = np.random.default_rng(seed)
    if layout == "stack":
        stack = rng.standard_normal((k, n, m))
    elif layout == "conv":  # torch (out, in, kh, kw) -> slices W[:, :, i, j] without a copy
        kernel = rng.standard_normal((n, m, k, 1))
        stack = np.moveaxis(kernel[..., 0], 2, 0)
    else:
        stack = rng.standard_normal((k, m, n)).transpose(0, 2, 1)
    got = spectra.eigenvalues(stack)
    assert got.shape == (k, min(n, m))
    for s in range(k):
        assert_matches_svd(stack[s], got[s])


def test_batch_of_mixed_shapes_and_dtypes(rng):
    arrays = [
        rng.standard_normal((30, 7)),
        rng.standard_normal((5, 40)).astype(np.float32),
        rng.standard_normal((4, 9, 6)),
        np.asfortranarray(rng.standard_normal((64, 64))),
    ]
    out = spectra.eigenvalues(arrays)
    assert isinstance(out, list) and len(out) == 4
    assert [o.shape for o in out] == [(7,), (5,), (4, 6), (64,)]
    assert_matches_svd(arrays[0], out[0])
    assert_matches_svd(arrays[1], out[1])
    for s in range(4):
        assert_matches_svd(arrays[2][s], out[2][s])
    assert_matches_svd(arrays[3], out[3])


@pytest.mark.parametrize(
    "shape",
    [(1, 1), (1, 300), (300, 1), (257, 256), (256, 257), (700, 300), (120, 900)],
    ids=["1x1", "row", "column", "tall-square", "wide-square", "tall", "wide"],
)
@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_fixed_shapes(rng, shape, precision):
    w = rng.standard_normal(shape)
    assert_matches_svd(w, spectra.eigenvalues(w, precision=precision), precision)


def test_large_matrix_tiled_gram_path(rng):
    """Gram sides >= 1024 are built from tiles by several threads and solved with the two-stage LAPACK path."""
    w = rng.standard_t(4, size=(1100, 1030))
    one = spectra.eigenvalues(w, threads=1)
    assert_matches_svd(w, one)
    np.testing.assert_array_equal(one, spectra.eigenvalues(w, threads=2))
    np.testing.assert_array_equal(one, spectra.eigenvalues(w.T, threads=2))


# ----------------------------------------------------------------------------------------------------------
# Conversions and documented input rules
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint8], ids=lambda d: np.dtype(d).name)
def test_integer_weights_are_converted_exactly(rng, dtype):
    w = rng.integers(-100, 100, size=(20, 10)).astype(dtype) if dtype != np.uint8 else rng.integers(
        0, 200, size=(20, 10)
    ).astype(dtype)
    got = spectra.eigenvalues(w)
    assert got.dtype == np.float64
    assert_matches_svd(w.astype(np.float64), got)


def test_float16_is_computed_in_float32_or_float64(rng):
    w = rng.standard_normal((30, 20)).astype(np.float16)
    assert_matches_svd(w, spectra.eigenvalues(w))
    assert spectra.eigenvalues(w, precision="float32").dtype == np.float32


def test_unaligned_view_is_copied(rng):
    raw = np.zeros(8 * 60 + 1, dtype=np.uint8)
    w = np.frombuffer(raw.data, dtype=np.float64, count=60, offset=1).reshape(10, 6)
    assert not w.flags.aligned
    assert_matches_svd(w, spectra.eigenvalues(w))


def test_does_not_modify_or_keep_input(rng):
    w = rng.standard_normal((50, 20))
    before = w.copy()
    spectra.eigenvalues([w, w.T, w[::2]])
    np.testing.assert_array_equal(w, before)


def test_rank_deficient_has_exact_zeros_clamped(rng):
    w = rng.standard_normal((40, 3)) @ rng.standard_normal((3, 30))
    got = spectra.eigenvalues(w)
    assert np.all(got >= 0) and not np.any(np.signbit(got))
    assert np.count_nonzero(got > 1e-9 * got[-1]) == 3


def test_zero_matrix_gives_zero_eigenvalues():
    got = spectra.eigenvalues(np.zeros((7, 5)))
    np.testing.assert_array_equal(got, np.zeros(5))
    assert not np.any(np.signbit(got))


def test_denormal_entries_lose_only_absolute_precision():
    w = np.full((6, 4), 1e-160)
    got = spectra.eigenvalues(w)
    assert got[-1] == pytest.approx(24 * 1e-320, rel=1e-2)
    assert np.all(got[:-1] < 1e-319)


# ----------------------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------------------


def test_nan_is_reported_with_count_and_slice():
    w = np.ones((4, 6, 5))
    w[2, 1, 1] = np.nan
    w[2, 3, 0] = np.inf
    with pytest.raises(ValueError, match=r"layer 'conv1': slice 2: 2 non-finite entries"):
        spectra.eigenvalues(w, name="conv1")


def test_nan_in_batch_names_array_and_lowest_slice():
    bad = np.ones((3, 4, 4))
    bad[1, 0, 0] = bad[2, 0, 0] = np.nan
    for threads in (1, 2):
        with pytest.raises(ValueError, match=r"layer 'm': array 1, slice 1: 1 non-finite"):
            spectra.eigenvalues([np.ones((3, 3)), bad], name="m", threads=threads)


@pytest.mark.parametrize(
    "w", [np.ones(5), np.ones((2, 2, 2, 2)), np.float64(3.0)], ids=["1-D", "4-D", "scalar"]
)
def test_wrong_ndim_is_type_error(w):
    with pytest.raises(TypeError, match="layer 'x': expected 2-D weights or a 3-D stack"):
        spectra.eigenvalues(w, name="x")


@pytest.mark.parametrize(
    "w",
    [np.ones((3, 3), dtype=bool), np.ones((3, 3), dtype=complex), np.array([["a", "b"]], dtype=object)],
    ids=["bool", "complex", "object"],
)
def test_wrong_dtype_is_type_error(w):
    with pytest.raises(TypeError, match="dtype"):
        spectra.eigenvalues(w)


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (0, 3, 3)])
def test_empty_is_value_error(shape):
    with pytest.raises(ValueError, match="empty"):
        spectra.eigenvalues(np.ones(shape))


def test_overflow_is_value_error_not_garbage():
    with pytest.raises(ValueError, match="overflow float64"):
        spectra.eigenvalues(np.full((4, 3), 1e200))
    with pytest.raises(ValueError, match="overflow float32"):
        spectra.eigenvalues(np.full((4, 3), 1e20), precision="float32")


def test_bad_options():
    with pytest.raises(ValueError, match="precision"):
        spectra.eigenvalues(np.ones((2, 2)), precision="float16")
    with pytest.raises(ValueError, match="threads"):
        spectra.eigenvalues(np.ones((2, 2)), threads=0)
    with pytest.raises(TypeError, match="threads"):
        spectra.eigenvalues(np.ones((2, 2)), threads=1.5)


def test_gram_larger_than_memory_is_refused_before_any_work():
    huge = np.lib.stride_tricks.as_strided(np.zeros(1), shape=(400_000, 400_000), strides=(0, 0))
    with pytest.raises(ValueError, match="layer 'emb': the Gram matrix of side 400000 needs .* GB"):
        spectra.eigenvalues(huge, name="emb")


@pytest.mark.parametrize("shape", [(60, 40), (40, 60), (1200, 1100)], ids=["tall", "wide", "tiled"])
def test_rank_deficient_matrices_are_resolved_like_an_svd(rng, shape):
    """Below the Gram route's resolution (λ_min < 100·(N+M)·eps·λ_max) float64 falls back to an SVD, so the
    numerical rank (σ > σ_max·N·eps) is the one numpy/LAPACK's SVD gives."""
    n, m = shape
    w = rng.standard_normal((n, m))
    w[: n // 3] = w[n // 3 : 2 * (n // 3)]  # duplicated rows
    w[:, 5] = 0.0
    ev = spectra.eigenvalues(w, threads=2)
    sv = np.sqrt(ev)
    tol = sv.max() * max(shape) * np.finfo(np.float64).eps
    assert np.count_nonzero(sv > tol) == np.linalg.matrix_rank(w)
    assert_matches_svd(w, ev)
