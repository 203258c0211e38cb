"""hts.spectra.conv_operator_eigenvalues against the explicit circular-convolution operator built in numpy."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_concurrency import assert_main_thread_ran_during

from hts import spectra

EPS = {"float64": np.finfo(np.float64).eps, "float32": np.finfo(np.float32).eps}


def shift(n: int, p: int) -> np.ndarray:
    """The n×n circular shift (S x)[y] = x[(y + p) mod n]."""
    return np.roll(np.eye(n), p, axis=1)


def explicit_operator(kernel: np.ndarray, n1: int, n2: int) -> np.ndarray:
    """The (out·n1·n2)×(in·n1·n2) matrix of y[o, y1, y2] = Σ_{i,p,q} K[o,i,p,q]·x[i, y1+p, y2+q] (indices mod n).

    That is torch's Conv2d with circular padding (a cross-correlation). Built from shifts and Kronecker
    products, with no DFT, so it is an independent reference. A true convolution (x[y − p]) is the same
    operator for the kernel flipped in space, whose DFT is conj(A_uv): the spectrum is the same.
    """
    k = np.asarray(kernel, dtype=np.float64)
    out, inp, kh, kw = k.shape
    op = np.zeros((out * n1 * n2, inp * n1 * n2))
    for p in range(kh):
        for q in range(kw):
            op += np.kron(k[:, :, p, q], np.kron(shift(n1, p), shift(n2, q)))
    return op


def reference_spectrum(kernel: np.ndarray, n1: int, n2: int) -> np.ndarray:
    """Ascending squared singular values of the explicit operator: min(out, in)·n1·n2 of them."""
    return np.sort(np.linalg.svd(explicit_operator(kernel, n1, n2), compute_uv=False) ** 2)


def tolerance(kernel_shape: tuple[int, ...], n1: int, n2: int, lam_max: float, precision: str) -> float:
    """Absolute error allowed for every eigenvalue.

    Ours: the DFT sums kh·kw terms (relative error ~kh·kw·eps of |K|·Σ|twiddle|, i.e. of ‖A_uv‖), the Gram
    product rounds by ~(out + in)·eps·λ_max, the Hermitian eigensolver is backward stable (~m·eps·λ_max);
    by Weyl each eigenvalue moves by at most the sum. The reference SVD of the explicit D×D' operator,
    D = max(out, in)·n1·n2, has its own error ~D·eps·σ_max in σ, so ~2·D·eps·λ_max in σ². In float32 the
    float64 reference is exact by comparison and only our float32 Gram and solver count.
    """
    out, inp, kh, kw = kernel_shape
    eps = EPS[precision]
    ours = (out + inp + kh * kw) * eps
    ref = 2 * max(out, inp) * n1 * n2 * EPS["float64"]
    return 8.0 * (ours + ref) * lam_max + 1e-300


def assert_matches_operator(kernel: np.ndarray, n1: int, n2: int, got: np.ndarray, precision: str = "float64"):
    out, inp = kernel.shape[:2]
    m = min(out, inp)
    assert got.shape == (n1 * n2, m)
    assert got.dtype == np.dtype(precision)
    assert np.all(got >= 0) and not np.any(np.signbit(got))
    assert np.all(np.diff(got, axis=1) >= 0), "each frequency's eigenvalues must be ascending"
    ref = reference_spectrum(kernel, n1, n2)
    assert ref.size == got.size
    tol = tolerance(kernel.shape, n1, n2, float(ref[-1]), precision)
    np.testing.assert_allclose(np.sort(got, axis=None).astype(np.float64), ref, rtol=0, atol=tol)


# ----------------------------------------------------------------------------------------------------------
# Against the explicit operator
# ----------------------------------------------------------------------------------------------------------

LAYOUTS = ("c", "torch_transposed", "keras", "strided", "negative", "fortran", "big_endian")


@st.composite
def conv_cases(draw, max_exponent: int = 20):
    """(kernel, n1, n2): out, in <= 5, kh, kw <= 3, kh <= n1 <= 6, kw <= n2 <= 6, any layout and dtype."""
    out, inp = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    n1, n2 = draw(st.integers(kh, 6)), draw(st.integers(kw, 6))
    kind = draw(st.sampled_from(["gaussian", "heavy", "zeros", "rank_one", "constant"]))
    scale = 10.0 ** draw(st.integers(-max_exponent, max_exponent))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (out, inp, kh, kw)
    if kind == "gaussian":
        k = rng.standard_normal(shape)
    elif kind == "heavy":
        k = rng.standard_t(2.5, size=shape)
    elif kind == "zeros":
        k = np.zeros(shape)
    elif kind == "rank_one":  # every spatial slice the same rank-1 channel matrix times a random filter
        k = np.einsum("o,i,pq->oipq", rng.standard_normal(out), rng.standard_normal(inp), rng.standard_normal((kh, kw)))
    else:
        k = np.full(shape, rng.standard_normal())
    k = (k * scale).astype(dtype)
    layout = draw(st.sampled_from(LAYOUTS))
    if layout == "torch_transposed":  # stored (in, out, kh, kw), viewed as (out, in, kh, kw)
        k = np.ascontiguousarray(k.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    elif layout == "keras":  # stored (kh, kw, in, out)
        k = np.ascontiguousarray(k.transpose(2, 3, 1, 0)).transpose(3, 2, 0, 1)
    elif layout == "strided":
        parent = np.zeros((2 * out, 3 * inp, kh, 2 * kw), dtype=dtype)
        parent[::2, ::3, :, ::2] = k
        k = parent[::2, ::3, :, ::2]
    elif layout == "negative":
        k = np.ascontiguousarray(k[::-1, :, ::-1, ::-1])[::-1, :, ::-1, ::-1]
    elif layout == "fortran":
        k = np.asfortranarray(k)
    elif layout == "big_endian":
        k = k.astype(k.dtype.newbyteorder(">"))
    return k, n1, n2


@given(case=conv_cases())
def test_matches_explicit_operator_float64(case):
    kernel, n1, n2 = case
    got = spectra.conv_operator_eigenvalues(kernel, input_size=(n1, n2))
    assert_matches_operator(kernel, n1, n2, got)


@given(case=conv_cases(max_exponent=8))
def test_matches_explicit_operator_float32(case):
    kernel, n1, n2 = case
    got = spectra.conv_operator_eigenvalues(kernel, input_size=(n1, n2), precision="float32")
    assert_matches_operator(kernel, n1, n2, got, "float32")


@pytest.mark.parametrize(
    "shape", [(4, 3, 3, 3), (2, 5, 1, 3), (5, 2, 3, 1), (3, 3, 2, 2), (1, 4, 3, 2)],
    ids=["3x3", "1x3", "3x1", "2x2", "out1"],
)
def test_default_input_size_is_the_kernel_size(rng, shape):
    kernel = rng.standard_normal(shape)
    got = spectra.conv_operator_eigenvalues(kernel)
    assert got.shape == (shape[2] * shape[3], min(shape[:2]))
    assert_matches_operator(kernel, shape[2], shape[3], got)


def test_int_and_pair_input_sizes(rng):
    kernel = rng.standard_normal((3, 4, 3, 2))
    square = spectra.conv_operator_eigenvalues(kernel, input_size=5)
    np.testing.assert_array_equal(square, spectra.conv_operator_eigenvalues(kernel, input_size=(5, 5)))
    np.testing.assert_array_equal(square, spectra.conv_operator_eigenvalues(kernel, input_size=[np.int64(5), 5]))
    assert_matches_operator(kernel, 5, 5, square)
    assert_matches_operator(kernel, 3, 6, spectra.conv_operator_eigenvalues(kernel, input_size=(3, 6)))


def test_rows_are_frequencies_in_fft2_order(rng):
    """Row u·n2 + v is frequency (u, v): compare with numpy's FFT and a batched SVD, frequency by frequency."""
    kernel = rng.standard_normal((7, 5, 3, 2))
    n1, n2 = 6, 5
    got = spectra.conv_operator_eigenvalues(kernel, input_size=(n1, n2))
    a = np.fft.fft2(kernel, s=(n1, n2)).transpose(2, 3, 0, 1).reshape(n1 * n2, 7, 5)
    ref = np.sort(np.linalg.svd(a, compute_uv=False) ** 2, axis=1)
    np.testing.assert_allclose(got, ref, rtol=0, atol=tolerance(kernel.shape, 1, 1, ref.max(), "float64"))
    # A_{-u,-v} = conj(A_uv): conjugate frequencies carry identical rows.
    for u in range(n1):
        for v in range(n2):
            np.testing.assert_array_equal(got[u * n2 + v], got[((-u) % n1) * n2 + (-v) % n2])


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (5, 5), (1, 7)], ids=["tall", "wide", "square", "row"])
@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_1x1_kernel_is_the_plain_matrix_at_every_frequency(rng, shape, precision):
    kernel = rng.standard_normal((*shape, 1, 1))
    plain = spectra.eigenvalues(kernel[:, :, 0, 0])
    for n1, n2 in [(1, 1), (3, 4)]:
        got = spectra.conv_operator_eigenvalues(kernel, input_size=(n1, n2), precision=precision)
        assert got.shape == (n1 * n2, min(shape))
        tol = tolerance(kernel.shape, 1, 1, plain[-1], precision)
        np.testing.assert_allclose(got, np.broadcast_to(plain, got.shape), rtol=0, atol=tol)


@pytest.fixture(scope="module")
def larger_cases() -> list:
    """(kernel, n1, n2, per-frequency reference by numpy's FFT and SVD), computed once for both precisions."""
    rng = np.random.default_rng(7)
    cases = []
    for shape, (n1, n2) in [((96, 70, 3, 3), (4, 3)), ((40, 90, 2, 3), (3, 4)), ((390, 384, 1, 2), (1, 3))]:
        kernel = rng.standard_t(4, size=shape)
        a = np.fft.fft2(kernel, s=(n1, n2)).transpose(2, 3, 0, 1).reshape(n1 * n2, *shape[:2])
        cases.append((kernel, n1, n2, np.sort(np.linalg.svd(a, compute_uv=False) ** 2, axis=1)))
    return cases


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_larger_channels_against_fft_and_svd(larger_cases, precision):
    """Gram sides past the small-matrix regime, both orientations; side >= 384 takes LAPACK's two-stage heevd."""
    for kernel, n1, n2, ref in larger_cases:
        got = spectra.conv_operator_eigenvalues(kernel, input_size=(n1, n2), precision=precision)
        np.testing.assert_allclose(got, ref, rtol=0, atol=tolerance(kernel.shape, 1, 1, ref.max(), precision))


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_parseval_sum_is_n1_n2_frobenius_squared(rng, precision):
    """Σ over all eigenvalues = Σ_uv ‖A_uv‖_F² = n1·n2·‖K‖_F² (Parseval), up to the Gram's rounding."""
    kernel = rng.standard_normal((48, 32, 3, 3)).astype(np.float32)
    for n1, n2 in [(3, 3), (8, 8), (5, 7)]:
        got = spectra.conv_operator_eigenvalues(kernel, input_size=(n1, n2), precision=precision)
        expected = n1 * n2 * float(np.sum(kernel.astype(np.float64) ** 2))
        # trace(G) is exact up to ~k·eps per diagonal entry; heevd preserves the trace to ~m·eps·λ_max.
        rtol = 1e-12 if precision == "float64" else 2e-5
        assert float(np.sum(got, dtype=np.float64)) == pytest.approx(expected, rel=rtol)


# ----------------------------------------------------------------------------------------------------------
# Threads, dtypes, input handling
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_bit_identical_for_every_thread_count(rng, precision):
    kernel = rng.standard_normal((40, 56, 3, 3))
    for size in [(3, 3), (8, 7)]:
        ref = spectra.conv_operator_eigenvalues(kernel, input_size=size, precision=precision, threads=1)
        for threads in (2, 3, 8):
            out = spectra.conv_operator_eigenvalues(kernel, input_size=size, precision=precision, threads=threads)
            np.testing.assert_array_equal(ref, out)


def test_many_python_threads_at_once(rng):
    kernels = [rng.standard_normal((20 + i, 16, 3, 3)) for i in range(6)]
    expected = [spectra.conv_operator_eigenvalues(k, input_size=6, threads=1) for k in kernels]
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda k: spectra.conv_operator_eigenvalues(k, input_size=6, threads=2), kernels))
    for got, exp in zip(results, expected):
        np.testing.assert_array_equal(got, exp)


def test_releases_the_gil(rng):
    kernel = rng.standard_normal((256, 256, 3, 3))
    assert_main_thread_ran_during(lambda: spectra.conv_operator_eigenvalues(kernel, input_size=4, threads=1))


def test_dtype_conversions(rng):
    ints = rng.integers(-50, 50, size=(4, 3, 3, 3))
    got = spectra.conv_operator_eigenvalues(ints.astype(np.int32), input_size=4)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, spectra.conv_operator_eigenvalues(ints.astype(np.float64), input_size=4))
    half = rng.standard_normal((4, 3, 3, 3)).astype(np.float16)
    got = spectra.conv_operator_eigenvalues(half, input_size=4)
    np.testing.assert_array_equal(got, spectra.conv_operator_eigenvalues(half.astype(np.float32), input_size=4))
    assert spectra.conv_operator_eigenvalues(half, precision="float32").dtype == np.float32


def test_float32_input_float64_precision_is_exact_widening(rng):
    kernel = rng.standard_normal((6, 5, 3, 3)).astype(np.float32)
    np.testing.assert_array_equal(
        spectra.conv_operator_eigenvalues(kernel, input_size=5),
        spectra.conv_operator_eigenvalues(kernel.astype(np.float64), input_size=5),
    )


def test_does_not_modify_input(rng):
    kernel = rng.standard_normal((5, 4, 3, 3))
    before = kernel.copy()
    spectra.conv_operator_eigenvalues(kernel[:, :, ::-1], input_size=6)
    np.testing.assert_array_equal(kernel, before)


def test_zero_kernel_gives_positive_zeros():
    got = spectra.conv_operator_eigenvalues(np.zeros((3, 2, 3, 3)), input_size=4)
    np.testing.assert_array_equal(got, np.zeros((16, 2)))
    assert not np.any(np.signbit(got))


# ----------------------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------------------


def test_nan_is_reported_with_count_and_layer():
    kernel = np.ones((4, 3, 3, 3))
    kernel[1, 2, 0, 1] = np.nan
    kernel[3, 0, 2, 2] = -np.inf
    for threads in (1, 2):
        with pytest.raises(ValueError, match=r"layer 'conv1': 2 non-finite entries \(NaN or Inf\) out of 108"):
            spectra.conv_operator_eigenvalues(kernel, name="conv1", threads=threads)


@pytest.mark.parametrize(
    "kernel", [np.ones((3, 3)), np.ones((2, 3, 3)), np.ones((1, 2, 3, 3, 1))], ids=["2-D", "3-D", "5-D"]
)
def test_wrong_ndim_is_type_error(kernel):
    with pytest.raises(TypeError, match="layer 'c': expected a 4-D"):
        spectra.conv_operator_eigenvalues(kernel, name="c")


@pytest.mark.parametrize("dtype", [bool, complex, object], ids=["bool", "complex", "object"])
def test_wrong_dtype_is_type_error(dtype):
    with pytest.raises(TypeError, match="layer 'c': .*dtype"):
        spectra.conv_operator_eigenvalues(np.ones((2, 2, 1, 1), dtype=dtype), name="c")


@pytest.mark.parametrize("shape", [(0, 3, 3, 3), (3, 0, 3, 3), (3, 3, 0, 3), (3, 3, 3, 0)])
def test_empty_is_value_error(shape):
    with pytest.raises(ValueError, match="layer 'c': empty kernel"):
        spectra.conv_operator_eigenvalues(np.ones(shape), name="c")


def test_bad_input_size():
    kernel = np.ones((2, 2, 3, 2))
    with pytest.raises(ValueError, match=r"layer 'c': input_size 2x5 is smaller than the kernel's 3x2"):
        spectra.conv_operator_eigenvalues(kernel, input_size=(2, 5), name="c")
    with pytest.raises(ValueError, match="smaller than the kernel"):
        spectra.conv_operator_eigenvalues(kernel, input_size=0)
    for bad in [(3,), (3, 3, 3), 3.0, (3, 2.0), True, (3, False), "33", np.array([3, 3])]:
        with pytest.raises(TypeError, match="input_size"):
            spectra.conv_operator_eigenvalues(kernel, input_size=bad)


def test_bad_options():
    kernel = np.ones((2, 2, 1, 1))
    with pytest.raises(ValueError, match="precision"):
        spectra.conv_operator_eigenvalues(kernel, precision="float16")
    with pytest.raises(ValueError, match="threads"):
        spectra.conv_operator_eigenvalues(kernel, threads=0)


def test_overflow_is_value_error_not_garbage():
    with pytest.raises(ValueError, match="layer 'big': squared singular values overflow float64"):
        spectra.conv_operator_eigenvalues(np.full((3, 2, 2, 2), 1e160), input_size=3, name="big")
    with pytest.raises(ValueError, match="overflow float32"):
        spectra.conv_operator_eigenvalues(np.full((3, 2, 2, 2), 1e20), precision="float32")
