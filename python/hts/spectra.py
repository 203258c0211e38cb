"""Spectra of weight matrices: eigenvalues, the power-law fit and the norms built from them.

Thin, typed wrappers over the native kernel ``hts._core``. Every function validates its input, converts it
at most once, releases the GIL for the numerical work, and raises ``TypeError``/``ValueError`` with the layer
name for bad input. All functions are safe to call from many threads at once.

Conventions (those of WeightWatcher 0.7.7 unless a docstring says otherwise): for a matrix W of shape N×M
with N >= M the eigenvalues are those of X = WᵀW, i.e. λ_i = σ_i(W)², M of them, ascending; logarithms are
base 10 unless stated.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any, Sequence, Union

import numpy as np

from ._native import _core
from ._threads import available_cores, resolve_threads

__all__ = [
    "MarchenkoPasturFit",
    "PowerLawFit",
    "SpectrumMetrics",
    "conv_operator_eigenvalues",
    "eigenvalues",
    "fit_power_law",
    "frobenius_norm",
    "jensen_shannon_distance",
    "kernel_info",
    "log_alpha_norm",
    "marchenko_pastur_fit",
    "randomization_metrics",
    "randomized_eigenvalue_batch",
    "randomized_eigenvalues",
    "shuffle_elements",
    "spectrum_metrics",
]

ArrayLike = Any
_PRECISIONS = ("float64", "float32")
_ARRAY_PREFIX = re.compile(r"^array (\d+)(?:, |: )")  # how the kernel names the array of a batch


class BatchItemError(ValueError):
    """``eigenvalues`` refused one array of its input: ``index`` says which, ``detail`` what was wrong."""

    def __init__(self, message: str, index: int, detail: str) -> None:
        super().__init__(message)
        self.index = index
        self.detail = detail


def _kernel_array(w: ArrayLike, name: str) -> np.ndarray:
    """``w`` as a float32/float64, native-order, aligned 2-D or 3-D array; the one place a copy may happen.

    float16 becomes float32 and integers become float64 (exact up to 2**53); bool, complex and object
    arrays are refused with ``TypeError``. Strided and transposed views are passed through without a copy.
    """
    arr = np.asarray(w)
    kind = arr.dtype.kind
    if kind == "f" and arr.dtype.itemsize in (4, 8):
        target = np.dtype(np.float32 if arr.dtype.itemsize == 4 else np.float64)
    elif kind == "f" and arr.dtype.itemsize == 2:
        target = np.dtype(np.float32)
    elif kind in "iu":
        target = np.dtype(np.float64)
    else:
        raise TypeError(f"layer {name!r}: expected real floating-point or integer weights, got dtype {arr.dtype}")
    if arr.ndim not in (2, 3):
        raise TypeError(f"layer {name!r}: expected 2-D weights or a 3-D stack of slices, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"layer {name!r}: empty weights of shape {arr.shape}")
    if arr.dtype != target or not arr.dtype.isnative or not arr.flags.aligned:
        arr = arr.astype(target.newbyteorder("="), order="K")
    return arr


def eigenvalues(
    w: ArrayLike | Sequence[ArrayLike],
    *,
    precision: str = "float64",
    threads: int | None = None,
    name: str = "<array>",
    stop: Any = None,
) -> Union[np.ndarray, list]:
    """Empirical spectral density: the ascending eigenvalues λ_i of X = WᵀW (the smaller side's Gram matrix).

    λ_i = σ_i(W)², i = 1..min(N, M), computed as the eigenvalues of the Gram matrix of the smaller side
    (BLAS syrk, then a symmetric eigensolver, values only); round-off negatives are clamped to 0.

    Parameters
    ----------
    w : array_like or sequence of array_like
        A 2-D matrix (N, M) -> returns shape (min(N, M),); a 3-D stack (k, N, M), e.g. the kh·kw slices of a
        conv kernel -> returns (k, min(N, M)); a list/tuple of such arrays -> a list of results, computed in
        one threaded batch. Any strides (transposed and sliced views are read in place).
    precision : {"float64", "float32"}
        ``"float64"`` (default) accumulates in double precision whatever the input dtype: eigenvalues agree
        with ``numpy.linalg.svd(w)**2`` to about ``M·1e-16·λ_max`` absolute; a matrix whose smallest Gram
        eigenvalue is within that round-off of 0 (rank-deficient) is redone with an SVD (LAPACK gesdd), so
        its small singular values are resolved as an SVD resolves them. ``"float32"`` is ~2× faster on
        large layers, but its absolute error is about ``M·6e-8·λ_max``, so eigenvalues below ~1e-6·λ_max
        carry little or no relative accuracy (the Gram product squares the condition number).
    threads : int, optional
        Native threads (default: the cores this process may use, capped by ``OMP_NUM_THREADS``). Results
        are bit-identical for every thread count.
    name : str
        Layer name used in error messages.
    stop : hts._core.StopFlag, optional
        Read by the kernel at its safe points (before each Gram tile, slab or matrix, each conversion chunk,
        each eigensolve and SVD refine); once set, the call raises ``hts._core.Stopped`` there, so a stop
        lands within the longest single LAPACK call. ``hts.analyze`` sets it from ``cancel``/``time_budget``.

    Returns
    -------
    ndarray or list of ndarray, float64 (or float32 with ``precision="float32"``)

    Raises
    ------
    TypeError
        Not 2-D/3-D, or a dtype that is not real floating point or integer.
    ValueError
        Empty matrices, or NaN/Inf entries (the message gives the count and the slice).
    """
    if precision not in _PRECISIONS:
        raise ValueError(f"precision must be one of {_PRECISIONS}, got {precision!r}")
    batch = isinstance(w, (list, tuple))
    items = list(w) if batch else [w]
    arrays = [
        _kernel_array(a, f"{name}[{i}]" if batch else name) for i, a in enumerate(items)
    ]
    try:
        out = _core.gram_eigenvalues(arrays, precision, resolve_threads(threads), stop=stop)
    except ValueError as err:
        raise _named_error(err, name, keep_array=batch) from None
    return out if batch else out[0]


def _named_error(err: ValueError, name: str, *, keep_array: bool = True) -> ValueError:
    """The kernel's error with the layer's name; a ``BatchItemError`` when the kernel named the array of a
    batch ("array i, slice s: ...", kept in the message when ``keep_array``)."""
    match = _ARRAY_PREFIX.match(str(err))
    if not match:
        return ValueError(f"layer {name!r}: {err}")
    detail = str(err)[match.end():]
    return BatchItemError(f"layer {name!r}: {err if keep_array else detail}", int(match.group(1)), detail)


@dataclass(frozen=True)
class PowerLawFit:
    """A power-law fit p(λ) ∝ λ^(−alpha) for λ >= xmin of a layer's eigenvalues.

    Attributes
    ----------
    alpha : float
        Continuous maximum-likelihood exponent on the tail of m values >= xmin:
        alpha = 1 + m / Σ ln(λ_i / xmin) (small samples, n < 20: 1 + (m − 1) / Σ ln(λ_i / xmin)). NaN if failed.
    xmin : float
        The candidate (a data value) with the smallest KS distance D. NaN if failed.
    xmax : float
        The largest fitted eigenvalue (no upper cut is applied).
    D : float
        One-sided Kolmogorov–Smirnov distance max_k |1 − (λ_(k)/xmin)^(1−alpha) − k/m|, k = 0..m−1 over the
        sorted tail. NaN if failed.
    sigma : float
        Standard error of alpha: (alpha − 1) / √m. NaN if failed.
    num_pl_spikes : int
        Number of the given eigenvalues >= xmin (0 if failed).
    num_fit : int
        Number of eigenvalues fitted (those > ``evals_thresh``).
    tail : int
        m, the fitted values >= xmin.
    small_n : bool
        Whether the small-sample fitter was used (num_fit < 20).
    status : str
        ``"success"`` or ``"failed"``.
    reason : str
        Why the fit failed; empty on success.
    candidates : dict or None
        With ``curve=True``: arrays ``xmin``, ``alpha``, ``D`` for every candidate xmin.
    """

    alpha: float
    xmin: float
    xmax: float
    D: float
    sigma: float
    num_pl_spikes: int
    num_fit: int
    tail: int
    small_n: bool
    status: str
    reason: str = ""
    candidates: dict | None = None

    def to_dict(self) -> dict:
        """Plain, JSON-serialisable values (NaN becomes None; candidate arrays become lists)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, float) and math.isnan(value):
                out[key] = None
        if self.candidates is not None:
            out["candidates"] = {k: [None if math.isnan(x) else x for x in v.tolist()]
                                 for k, v in self.candidates.items()}
        return out


def _eigenvalue_vector(evals: ArrayLike, what: str) -> np.ndarray:
    arr = np.asarray(evals)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{what}: expected real eigenvalues, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise TypeError(f"{what}: expected a 1-D array of eigenvalues, got shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float64)


def fit_power_law(
    evals: ArrayLike,
    *,
    evals_thresh: float = 1e-5,
    max_candidates: int | None = None,
    curve: bool = False,
    threads: int | None = None,
) -> PowerLawFit:
    """Fit a power law to the tail of an ESD, choosing xmin by the smallest KS distance (WeightWatcher 0.7.7).

    The fitted data are the n eigenvalues > ``evals_thresh`` (an absolute threshold, as WeightWatcher's).
    For n >= 20 every sorted value but the largest is a candidate xmin (ties kept); each gets
    alpha = 1 + m / Σ_{λ>=xmin} ln(λ/xmin) and the KS distance D above (D = 1 when alpha <= 1); the first
    candidate with the smallest D wins. For n < 20 only tails of at least 8 values are candidates and alpha
    is bias-corrected, alpha = 1 + (m − 1) / Σ ln(λ/xmin). The scan is exact by default and runs natively,
    threaded over candidates, skipping a candidate as soon as its running distance exceeds the best so far.

    Parameters
    ----------
    evals : array_like, 1-D
        Eigenvalues, any order.
    evals_thresh : float
        Only eigenvalues above this are fitted.
    max_candidates : int, optional
        Score only this many candidates, evenly spaced over the sorted data (an approximation for n ≫ 10⁴);
        default: all of them (exact).
    curve : bool
        Also return alpha and D for every candidate in ``PowerLawFit.candidates`` (exact, no pruning: slower).
    threads : int, optional
        Native threads for the scan (large n only); the answer does not depend on it.

    Returns
    -------
    PowerLawFit
        ``status == "failed"`` (alpha etc. NaN, with a reason) when no fit is possible, e.g. fewer than two
        eigenvalues above the threshold. Never raises for data reasons other than NaN input.
    """
    arr = _eigenvalue_vector(evals, "fit_power_law")
    if np.isnan(arr).any():
        raise ValueError(f"fit_power_law: {int(np.isnan(arr).sum())} of {arr.size} eigenvalues are NaN")
    if max_candidates is not None and max_candidates < 2:
        raise ValueError(f"max_candidates must be >= 2 or None, got {max_candidates}")
    raw = _core.fit_power_law(
        arr,
        evals_thresh=float(evals_thresh),
        threads=resolve_threads(threads),
        max_candidates=0 if max_candidates is None else int(max_candidates),
        want_curve=bool(curve),
    )
    ok = raw["ok"]
    nan = float("nan")
    candidates = None
    if curve and "curve_D" in raw:
        candidates = {"xmin": raw["curve_xmin"], "alpha": raw["curve_alpha"], "D": raw["curve_D"]}
    return PowerLawFit(
        alpha=raw["alpha"] if ok else nan,
        xmin=raw["xmin"] if ok else nan,
        xmax=raw["xmax"] if raw["n_fit"] > 0 else nan,
        D=raw["D"] if ok else nan,
        sigma=raw["sigma"] if ok else nan,
        num_pl_spikes=raw["num_pl_spikes"] if ok else 0,
        num_fit=raw["n_fit"],
        tail=raw["tail"] if ok else 0,
        small_n=raw["small_n"],
        status="success" if ok else "failed",
        reason=raw["reason"],
        candidates=candidates,
    )


@dataclass(frozen=True)
class SpectrumMetrics:
    """Norm-based metrics of one layer's eigenvalues λ_i (log = log10).

    Attributes
    ----------
    num_evals : int
        Number of eigenvalues, zeros included.
    norm : float
        Σλ_i = ‖W‖_F² (squared Frobenius norm).
    log_norm : float
        log10 Σλ_i.
    lambda_max : float
        λ_max = ‖W‖₂² (WeightWatcher's ``spectral_norm``).
    log_spectral_norm : float
        log10 λ_max.
    stable_rank : float
        Σλ_i / λ_max.
    matrix_rank : int
        #{i : √λ_i > √λ_max · N · ε₆₄}, ε₆₄ = 2.2e-16, N = the larger dimension.
    rank_loss : int
        num_evals − matrix_rank (of this spectrum taken as one matrix).
    weak_rank_loss : int
        #{i : λ_i < tolerance}.
    entropy : float
        Normalised spectral entropy −Σ p_i ln p_i / ln(matrix_rank + ε), p_i = λ_i/Σλ + ε, ε = 1e-10.
    sv_max, sv_min : float
        √λ_max and √λ_min.
    log_alpha_norm : float
        log10 Σλ_i^alpha (NaN without alpha).
    alpha_weighted : float
        alpha · log10 λ_max (α̂; NaN without alpha).
    """

    num_evals: int
    norm: float
    log_norm: float
    lambda_max: float
    log_spectral_norm: float
    stable_rank: float
    matrix_rank: int
    rank_loss: int
    weak_rank_loss: int
    entropy: float
    sv_max: float
    sv_min: float
    log_alpha_norm: float
    alpha_weighted: float

    def to_dict(self) -> dict:
        """Plain values; NaN and ±inf become None so that strict JSON parsers accept them."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


def _log10(x: float) -> float:
    return math.log10(x) if x > 0 else -math.inf


def spectrum_metrics(
    evals: ArrayLike, *, N: int, alpha: float = float("nan"), tolerance: float = 1e-6
) -> SpectrumMetrics:
    """Norm-based metrics of a layer from its eigenvalues (see ``SpectrumMetrics`` for every formula).

    Parameters
    ----------
    evals : array_like, 1-D
        Eigenvalues λ_i >= 0 of the layer (pooled over slices for a conv layer).
    N : int
        The larger dimension of the matrix, for the rank tolerance.
    alpha : float, optional
        The fitted power-law exponent, for ``log_alpha_norm`` and ``alpha_weighted``.
    tolerance : float
        Threshold of ``weak_rank_loss``.
    """
    arr = _eigenvalue_vector(evals, "spectrum_metrics")
    if arr.size == 0:
        raise ValueError("spectrum_metrics: no eigenvalues")
    st = _core.spectrum_stats(arr, N=float(N), tolerance=float(tolerance))
    alpha = float(alpha)
    lam_max = st["lambda_max"]
    return SpectrumMetrics(
        num_evals=st["count"],
        norm=st["sum"],
        log_norm=_log10(st["sum"]),
        lambda_max=lam_max,
        log_spectral_norm=_log10(lam_max),
        stable_rank=st["stable_rank"],
        matrix_rank=st["matrix_rank"],
        rank_loss=st["count"] - st["matrix_rank"],
        weak_rank_loss=st["weak_rank_loss"],
        entropy=st["entropy"],
        sv_max=math.sqrt(lam_max),
        sv_min=math.sqrt(st["lambda_min"]),
        log_alpha_norm=_core.log10_alpha_norm(arr, alpha),
        alpha_weighted=alpha * _log10(lam_max) if not math.isnan(alpha) else float("nan"),
    )


def log_alpha_norm(evals: ArrayLike, alpha: float) -> float:
    """log10 Σ_i λ_i^alpha, the log of the Schatten-alpha norm of X raised to alpha, without overflow.

    Computed as alpha·log10 λ_max + log10 Σ_i (λ_i/λ_max)^alpha. −inf when every λ_i is 0.
    """
    return _core.log10_alpha_norm(_eigenvalue_vector(evals, "log_alpha_norm"), float(alpha))


def frobenius_norm(w: ArrayLike, *, name: str = "<array>") -> float:
    """‖W‖_F = √(Σ_ij W_ij²), summed over all slices of a 3-D stack, accumulated in float64.

    Equals √(Σλ_i) of the eigenvalues, without computing them (O(N·M) instead of O(N·M²)).
    """
    arr = _kernel_array(w, name)
    per_slice = _core.frobenius_norm_sq(arr)
    total = float(per_slice.sum())
    if not math.isfinite(total):
        raise ValueError(f"layer {name!r}: weights contain NaN or Inf")
    return math.sqrt(total)


def kernel_info() -> dict:
    """What the native kernel was built with and may use: version, BLAS/LAPACK build and CPU target, cores."""
    return {
        "version": _core.__version__,
        "blas": _core.openblas_config().strip(),
        "cores": available_cores(),
        "default_threads": resolve_threads(None),
    }


def _conv_input_size(input_size: Any, kh: int, kw: int, name: str) -> tuple[int, int]:
    """(n1, n2) from None (the kernel's own kh×kw), an int n (n×n) or a pair; each at least the kernel's side."""
    if input_size is None:
        return kh, kw

    def is_int(n: Any) -> bool:
        return isinstance(n, (int, np.integer)) and not isinstance(n, (bool, np.bool_))

    sizes = (input_size, input_size) if is_int(input_size) else input_size
    if not isinstance(sizes, (tuple, list)) or len(sizes) != 2 or not all(is_int(n) for n in sizes):
        raise TypeError(f"layer {name!r}: input_size must be None, an int or a pair of ints, got {input_size!r}")
    n1, n2 = int(sizes[0]), int(sizes[1])
    if n1 < kh or n2 < kw:
        raise ValueError(f"layer {name!r}: input_size {n1}x{n2} is smaller than the kernel's {kh}x{kw}")
    return n1, n2


def conv_operator_eigenvalues(
    kernel: ArrayLike,
    *,
    input_size: int | tuple[int, int] | None = None,
    precision: str = "float64",
    threads: int | None = None,
    name: str = "<array>",
    groups: int = 1,
) -> np.ndarray:
    """Exact spectrum of a Conv2D layer's convolution operator, frequency by frequency (periodic boundary).

    For a kernel K of shape (out, in, kh, kw) acting on n1×n2 inputs with circular padding, the linear map
    x ↦ K * x (a (out·n1·n2)×(in·n1·n2) matrix) is block-diagonalised by the 2-D DFT (Sedghi, Gupta & Long
    2019, "The singular values of convolutional layers"). At each frequency (u, v), 0 <= u < n1, 0 <= v < n2,

        A_uv[o, i] = Σ_{p<kh, q<kw} K[o, i, p, q] · exp(−2πi (u·p/n1 + v·q/n2)),

    the out×in complex DFT of the zero-padded kernel, and the operator's squared singular values are the union
    over all n1·n2 frequencies of the eigenvalues of the smaller Gram matrix A_uvᴴA_uv (or A_uvA_uvᴴ),
    min(out, in) per frequency. By Parseval, their sum is n1·n2·‖K‖_F². This is not WeightWatcher's
    ``conv2d_fft`` (a fixed 32×32 grid, per channel pair, real part only).

    Computed natively: direct DFT sums in float64, BLAS herk, LAPACK heevd (values only), round-off negatives
    clamped to 0; A_{−u,−v} = conj(A_uv) has the same eigenvalues, so each conjugate pair is solved once.

    A grouped convolution (``groups = g``; depthwise: g = in channels) maps the input channels of group k only
    to the output channels of group k, so its operator is block diagonal: its spectrum is the union over the g
    groups of each group's operator spectrum, kernel K[k·out/g:(k+1)·out/g] of shape (out/g, in/g, kh, kw).

    Parameters
    ----------
    kernel : array_like, shape (out, in, kh, kw)
        Conv2D weights in torch layout (for Keras' (kh, kw, in, out) pass ``np.transpose(w, (3, 2, 0, 1))``;
        any strides are read in place).
    input_size : int or (int, int), optional
        The periodic input size n1×n2 (an int n means n×n); each at least the kernel's side. Default: the
        kernel's own size kh×kw.
    precision : {"float64", "float32"}
        ``"float64"`` (default) accumulates in double precision whatever the input dtype; eigenvalues are
        accurate to about ``(out + in)·1e-16·λ_max`` absolute (a Gram matrix squares the condition number).
        ``"float32"`` forms the DFT in float64 and the Gram matrix and eigensolver in float32
        (about ``(out + in)·6e-8·λ_max``).
    threads : int, optional
        Native threads over frequencies (default: the cores this process may use, capped by
        ``OMP_NUM_THREADS``). Results are bit-identical for every thread count.
    name : str
        Layer name used in error messages.
    groups : int
        The convolution's groups (default 1, a dense convolution); the kernel is then (out, in/groups, kh, kw)
        and ``out`` must be a multiple of ``groups``.

    Returns
    -------
    ndarray, shape (n1·n2, groups·min(out/groups, in/groups)), float64 (or float32 with ``precision="float32"``)
        Row u·n2 + v holds the ascending eigenvalues of frequency (u, v), all groups together (the order of
        ``numpy.fft.fft2(kernel, s=(n1, n2))`` over the last two axes). ``np.sort(result, axis=None)`` is
        the operator's spectrum.

    Raises
    ------
    TypeError
        Not 4-D, a dtype that is not real floating point or integer, or a malformed ``input_size``.
    ValueError
        Empty kernels, ``input_size`` smaller than the kernel, NaN/Inf entries (the message gives the count),
        or squares that overflow the precision.
    """
    if precision not in _PRECISIONS:
        raise ValueError(f"precision must be one of {_PRECISIONS}, got {precision!r}")
    arr = np.asarray(kernel)
    kind = arr.dtype.kind
    if kind == "f" and arr.dtype.itemsize in (2, 4, 8):
        target = np.dtype(np.float64 if arr.dtype.itemsize == 8 else np.float32)  # float16 is widened
    elif kind in "iu":
        target = np.dtype(np.float64)
    else:
        raise TypeError(f"layer {name!r}: expected real floating-point or integer weights, got dtype {arr.dtype}")
    if arr.ndim != 4:
        raise TypeError(f"layer {name!r}: expected a 4-D (out, in, kh, kw) conv kernel, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"layer {name!r}: empty kernel of shape {arr.shape}")
    n1, n2 = _conv_input_size(input_size, arr.shape[2], arr.shape[3], name)
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise TypeError(f"layer {name!r}: groups must be a positive int, got {groups!r}")
    groups = int(groups)
    if arr.shape[0] % groups:
        raise ValueError(f"layer {name!r}: {arr.shape[0]} output channels do not split into groups={groups}")
    if arr.dtype != target or not arr.dtype.isnative or not arr.flags.aligned:
        arr = arr.astype(target.newbyteorder("="), order="K")
    n_threads = resolve_threads(threads)
    per_group = arr.shape[0] // groups
    try:
        if groups == 1:
            return _core.conv_operator_eigenvalues(arr, n1, n2, precision, n_threads)
        parts = [_core.conv_operator_eigenvalues(arr[k * per_group:(k + 1) * per_group], n1, n2, precision,
                                                 n_threads) for k in range(groups)]
    except ValueError as err:
        raise ValueError(f"layer {name!r}: {err}") from None
    return np.sort(np.concatenate(parts, axis=1), axis=1)


# ----------------------------------------------------------------------------------------------------------
# Random-matrix-theory metrics: WeightWatcher 0.7.7's ``mp_fit=True`` and ``randomize=True`` columns.

_SEED_LIMIT = 2**64


@dataclass(frozen=True)
class MarchenkoPasturFit:
    """A Marchenko–Pastur fit of a layer's bulk (WeightWatcher 0.7.7's ``mp_fit=True`` columns).

    The eigenvalues are first rescaled to mean 1: λ'_i = W_scale²·λ_i. ``sigma_mp``, ``mp_softrank`` and the
    spike count refer to that scale; ``bulk_max`` and ``bulk_min`` are returned on the original scale.

    Attributes
    ----------
    num_spikes : int
        #{i : λ'_i > bulk_max' + √TW}, TW = Q^(−1/2)·bulk_max'^(2/3)·M^(−2/3) (a Tracy–Widom margin), where
        bulk_max' = W_scale²·bulk_max. 0 if the fit failed.
    sigma_mp : float
        The fitted MP scale σ of the rescaled spectrum (NaN if failed).
    mp_softrank : float
        bulk_max' / max λ'.
    W_scale : float
        √n / √(Σλ_i), n = the number of eigenvalues.
    bulk_max, bulk_min : float
        The MP bulk edges (σ(1 ± 1/√Q))², divided by W_scale² (original scale).
    Q : float
        N / M.
    quarter_circle : bool
        True when Q == 1: the quarter-circle law of the singular values was fitted instead.
    status : str
        ``"success"`` or ``"failed"`` (WeightWatcher reports −1 in every column where this is ``"failed"``).
    reason : str
        Why the fit failed; empty on success.
    objective : float
        The squared residual J(σ) at the fitted σ.
    evaluations : int
        How many times J was evaluated (σ grid + Nelder–Mead).
    """

    num_spikes: int
    sigma_mp: float
    mp_softrank: float
    W_scale: float
    bulk_max: float
    bulk_min: float
    Q: float
    quarter_circle: bool
    status: str
    reason: str = ""
    objective: float = float("nan")
    evaluations: int = 0

    def to_dict(self) -> dict:
        """Plain values; NaN and ±inf become None so that strict JSON parsers accept them."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


def _positive_size(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{what} must be a positive integer, got {value!r}")
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a positive integer, got {value!r}") from None
    if size != value or size < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return size


def _checked_spectrum(evals: ArrayLike, what: str) -> np.ndarray:
    arr = _eigenvalue_vector(evals, what)
    if arr.size and not np.isfinite(arr).all():
        raise ValueError(f"{what}: {int((~np.isfinite(arr)).sum())} of {arr.size} eigenvalues are NaN or infinite")
    if arr.size and (arr < 0).any():
        raise ValueError(f"{what}: {int((arr < 0).sum())} of {arr.size} eigenvalues are negative")
    return arr


def marchenko_pastur_fit(
    evals: ArrayLike, *, N: int, M: int, polish: bool = True, threads: int | None = None
) -> MarchenkoPasturFit:
    """Fit the Marchenko–Pastur law to the bulk of an ESD, as WeightWatcher 0.7.7's ``mp_fit=True``.

    With Q = N/M and the n eigenvalues rescaled to mean 1, λ' = W_scale²·λ, W_scale = √n / √(Σλ):

    1. Data x = λ' (Q ≠ 1), or x = √λ' when Q == 1 (quarter-circle law of the singular values).
    2. Density: the linear-kernel KDE f(t) = (1/(n h)) Σ_i max(0, 1 − |t − x_i|/h), h = 0.1, on
       t_j = linspace(0, max x + 0.5, 1000); points with f(t_j) <= 0.01 are left out.
    3. Objective J(σ) = Σ_j (ρ_σ(t_j) − f(t_j))² over the kept points, with
       ρ_σ(λ) = √((b − λ)(λ − a)) · Q / (2π σ² λ) on [a, b], 0 elsewhere, a, b = (σ(1 ∓ 1/√Q))², and
       J = 1000² · (kept points) when b < t_peak, b > max kept t_j or a > t_peak (t_peak = argmax f);
       for Q == 1, ρ_σ(ν) = √(4 − ν²) / (π σ²) and no penalty.
    4. σ = the first minimiser of J over σ = s0·(0.05, 0.06, …, 1.99), s0 = √(max λ') / (1 + 1/√Q), then
       polished by a one-dimensional Nelder–Mead (scipy ``fmin`` defaults: xatol = fatol = 1e-4) — exactly
       ``scipy.optimize.brute(..., finish=fmin)`` as WeightWatcher calls it, but with the KDE computed once
       instead of once per σ.
    5. bulk_max' = (σ(1 + 1/√Q))², bulk_min' = (σ(1 − 1/√Q))², TW = Q^(−1/2)·bulk_max'^(2/3)·M^(−2/3);
       num_spikes = #(λ' > bulk_max' + √TW); mp_softrank = bulk_max' / max λ'; bulk_max = bulk_max'/W_scale²,
       bulk_min = bulk_min'/W_scale².

    The numbers equal WeightWatcher's bit for bit whenever the KDE values do; WeightWatcher's KDE
    (scikit-learn's tree, summed in log space) differs from this one by ~1e-14 relative, which can move σ
    only when two values of J tie to that precision.

    Parameters
    ----------
    evals : array_like, 1-D
        The layer's eigenvalues λ_i >= 0 (pooled over slices for a conv layer, scaled as for the other
        metrics), any order.
    N, M : int
        The layer's larger and smaller dimension (N < M is accepted, giving Q < 1). M enters only TW.
    polish : bool
        Run the Nelder–Mead step after the σ grid (WeightWatcher does).
    threads : int, optional
        Native threads for long spectra; the result does not depend on it.

    Returns
    -------
    MarchenkoPasturFit
        ``status == "failed"`` (NaN values, ``num_spikes`` 0) for spectra WeightWatcher cannot fit either: no
        eigenvalues, all zero, or no KDE point above 0.01.

    Raises
    ------
    ValueError
        NaN, infinite or negative eigenvalues; N or M not a positive integer.
    """
    arr = _checked_spectrum(evals, "marchenko_pastur_fit")
    n_, m_ = _positive_size(N, "N"), _positive_size(M, "M")
    Q = n_ / m_
    raw = _core.marchenko_pastur_fit(arr, Q=Q, M=float(m_), threads=resolve_threads(threads), polish=bool(polish))
    nan = float("nan")
    ok = raw["ok"]
    return MarchenkoPasturFit(
        num_spikes=raw["num_spikes"] if ok else 0,
        sigma_mp=raw["sigma_mp"] if ok else nan,
        mp_softrank=raw["mp_softrank"] if ok else nan,
        W_scale=raw["W_scale"] if ok else nan,
        bulk_max=raw["bulk_max"] if ok else nan,
        bulk_min=raw["bulk_min"] if ok else nan,
        Q=Q,
        quarter_circle=raw["quarter_circle"],
        status="success" if ok else "failed",
        reason=raw["reason"],
        objective=raw["objective"],
        evaluations=raw["evaluations"],
    )


def _seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not 0 <= int(seed) < _SEED_LIMIT:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    return int(seed)


def shuffle_elements(
    w: ArrayLike, *, seed: int, replicas: int = 1, threads: int | None = None, name: str = "<array>"
) -> np.ndarray:
    """Randomly permute the elements of each matrix (each slice of a stack), reproducibly from ``seed``.

    Slice s of replica r (output index g = r·k + s) is read in row-major order, a_0 … a_{L−1}, and permuted
    uniformly at random with the splitmix64 stream key K = stream_seed(``seed``, g); uniform integers use
    Lemire's unbiased multiply-and-reject.

    - L <= 2**15: Fisher–Yates driven by splitmix64(K): for i = L−1 … 1, swap a_i and a_j, j uniform in [0, i].
    - Larger slices (Rao–Sandelius): element i goes to bucket ℓ_i ∈ [0, 2^b), b = min(6, ⌈log2(L / 2**15)⌉),
      given by b bits of splitmix64(K)'s output ⌊i/4⌋ + 1 (a counter-based draw: four 16-bit fields per
      output); the buckets are laid out in order, each keeping its elements in increasing i, and each is then
      shuffled by Fisher–Yates with its own stream stream_seed(K, j). Given the bucket sizes n_j, each split
      of the elements into buckets has probability Π n_j!/L! and each bucket order 1/n_j!, so every
      permutation has probability 1/L!, as for plain Fisher–Yates; but each bucket is shuffled while it sits
      in cache, and the passes run on all threads (several times faster on large layers).

    The exact steps are in cpp/shuffle.hpp. The output depends only on the values, the shape and the seed: not
    on memory layout, platform or thread count. Each slice is shuffled on its own, as WeightWatcher's
    ``randomize=True`` does (``np.random.shuffle`` per matrix).

    Parameters
    ----------
    w : array_like, shape (N, M) or (k, N, M)
        Weights; float16/integers are converted as for ``eigenvalues``.
    seed : int
        In [0, 2**64).
    replicas : int
        Independent shuffles of every slice.
    threads : int, optional
        Native threads (over slices × replicas, and over the chunks and buckets of large slices).
    name : str
        Layer name used in error messages.

    Returns
    -------
    ndarray
        Shape (N, M) for a 2-D ``w`` and one replica, else (replicas·k, N, M); the input's kernel dtype.
    """
    arr = _kernel_array(w, name)
    replicas = _positive_size(replicas, "replicas")
    k = arr.shape[0] if arr.ndim == 3 else 1
    rows, cols = arr.shape[-2:]
    out = np.empty((replicas * k, rows, cols), dtype=arr.dtype)
    _core.shuffle_elements(arr, out, _seed(seed), replicas, resolve_threads(threads))
    return out[0] if arr.ndim == 2 and replicas == 1 else out


def randomized_eigenvalues(
    w: ArrayLike,
    *,
    seed: int,
    replicas: int | None = None,
    precision: str = "float64",
    threads: int | None = None,
    name: str = "<array>",
) -> np.ndarray:
    """Eigenvalues of the element-shuffled weights, pooled over slices and replicas, ascending.

    Each slice W_s is shuffled (``shuffle_elements``) and its eigenvalues σ_i(shuffle(W_s))² are computed by
    the batched kernel of ``eigenvalues``; all of them are pooled and sorted. This is WeightWatcher's
    ``rand_evals``: with ``replicas=None`` it uses 5 replicas when the layer has fewer than 100 eigenvalues
    (k·min(N, M) < 100) and 1 otherwise. Pass the slices scaled as for the layer's own eigenvalues (e.g.
    WeightWatcher's pooled conv2d_norm multiplies eigenvalues by 1/2: scale the result, or w by √(1/2)).

    Parameters
    ----------
    w : array_like, shape (N, M) or (k, N, M)
    seed : int
        In [0, 2**64); the result is reproducible for a seed (for any thread count).
    replicas : int, optional
        Shuffles per slice (default: 5 if k·min(N, M) < 100 else 1).
    precision, threads, name
        As for ``eigenvalues``.

    Returns
    -------
    ndarray, shape (replicas·k·min(N, M),), ascending (float64, or float32 with ``precision="float32"``)
    """
    arr = _kernel_array(w, name)
    k = arr.shape[0] if arr.ndim == 3 else 1
    if replicas is None:
        replicas = 5 if k * min(arr.shape[-2:]) < 100 else 1
    shuffled = shuffle_elements(arr, seed=seed, replicas=replicas, threads=threads, name=name)
    ev = eigenvalues(shuffled, precision=precision, threads=threads, name=name)
    return np.sort(np.ravel(ev))


def randomized_eigenvalue_batch(
    arrays: Sequence[ArrayLike],
    *,
    seeds: Sequence[int],
    replicas: Sequence[int],
    precision: str = "float64",
    threads: int | None = None,
    name: str = "<batch>",
) -> list:
    """``eigenvalues(shuffle_elements(a, seed=s, replicas=r))`` for every (a, s, r), in one threaded call.

    Array i (2-D, or a (k, N, M) stack) gives a (r·k, min(N, M)) array: row g holds the ascending eigenvalues
    of shuffled matrix g (g = replica·k + slice), bit for bit what ``shuffle_elements`` followed by
    ``eigenvalues`` give, whatever ``threads``. The work is scheduled together: arrays in decreasing cost,
    each shuffled into a buffer of its own and solved on one thread (the shuffle of one overlapping the
    eigensolver of another, and only a few shuffled copies in memory at a time); an array costing more than
    all the others together is done first with every thread.

    Raises
    ------
    BatchItemError
        The kernel refused array ``index`` (e.g. float64 values beyond float32's range with
        ``precision="float32"``).
    """
    if precision not in _PRECISIONS:
        raise ValueError(f"precision must be one of {_PRECISIONS}, got {precision!r}")
    items = [_kernel_array(a, f"{name}[{i}]") for i, a in enumerate(arrays)]
    seeds = [_seed(x) for x in seeds]
    replicas = [_positive_size(r, "replicas") for r in replicas]
    if not len(items) == len(seeds) == len(replicas):
        raise ValueError("randomized_eigenvalue_batch: one seed and one replica count per array")
    try:
        return _core.randomized_gram_eigenvalues(items, seeds, replicas, precision, resolve_threads(threads))
    except ValueError as err:
        raise _named_error(err, name) from None


def jensen_shannon_distance(p: ArrayLike, q: ArrayLike) -> float:
    """Jensen–Shannon distance between two non-negative vectors, position by position (natural log).

    m = (p + q)/2; JSD = (KL(p̂ ‖ m̂) + KL(q̂ ‖ m̂)) / 2 with x̂ = x / Σx and KL(a ‖ b) = Σ_i a_i ln(a_i / b_i)
    (terms with a_i = 0 are 0); the distance is √JSD, in [0, √ln 2]. This is WeightWatcher's
    ``jensen_shannon_distance`` (scipy ``entropy`` of the unnormalised mean, scipy >= 1.15 ``rel_entr``),
    bit for bit. NaN when a vector sums to 0 (or the divergence rounds below 0).

    Raises
    ------
    ValueError
        Different lengths, empty vectors, NaN/inf or negative entries.
    """
    a = _checked_spectrum(p, "jensen_shannon_distance")
    b = _checked_spectrum(q, "jensen_shannon_distance")
    if a.size == 0:
        raise ValueError("jensen_shannon_distance: empty vectors")
    return _core.jensen_shannon_distance(a, b)


def randomization_metrics(
    evals: ArrayLike,
    rand_evals: ArrayLike,
    *,
    N: int,
    M: int,
    single_rand_evals: ArrayLike | None = None,
    threads: int | None = None,
) -> dict:
    """WeightWatcher 0.7.7's ``randomize=True`` columns from a layer's ESD and its randomized ESD.

    With λ = ``evals`` and ρ = one replica of the randomized eigenvalues (``single_rand_evals``, or
    ``rand_evals`` itself when omitted), both sorted ascending:

    - ``rand_distance`` = ``jensen_shannon_distance(λ, ρ)`` — over sorted index positions, not histograms;
    - ``ww_softrank`` = max ρ / max λ;  ``ww_maxdist`` = max λ − max ρ;
    - ``max_rand_eval`` = max of ``rand_evals`` (all replicas);
    - ``rand_num_spikes`` (also ``num_traps``: correlation traps), ``rand_sigma_mp``, ``rand_mp_softrank``,
      ``rand_W_scale``, ``rand_bulk_max``, ``rand_bulk_min`` = ``marchenko_pastur_fit(rand_evals, N, M)``
      (all replicas pooled); ``rand_mp_status`` is that fit's status.

    WeightWatcher computes ``rand_evals`` with ``randomized_eigenvalues`` semantics (5 replicas below 100
    eigenvalues) and draws a *fresh* single replica for the distance, soft rank and max distance; pass that
    one as ``single_rand_evals`` (it must have as many values as ``evals``).

    Parameters
    ----------
    evals, rand_evals, single_rand_evals : array_like, 1-D, non-negative
    N, M : int
        The layer's dimensions (for the MP fit).
    threads : int, optional
        For the MP fit.

    Returns
    -------
    dict
        The columns above (floats; NaN where the MP fit failed).
    """
    lam = np.sort(_checked_spectrum(evals, "randomization_metrics (evals)"))
    rand = np.sort(_checked_spectrum(rand_evals, "randomization_metrics (rand_evals)"))
    one = rand if single_rand_evals is None else np.sort(
        _checked_spectrum(single_rand_evals, "randomization_metrics (single_rand_evals)"))
    if lam.size == 0 or rand.size == 0:
        raise ValueError("randomization_metrics: no eigenvalues")
    if one.size != lam.size:
        raise ValueError(
            f"randomization_metrics: the distance needs one replica with as many values as evals ({lam.size}), "
            f"got {one.size}; pass single_rand_evals")
    fit = marchenko_pastur_fit(rand, N=N, M=M, threads=threads)
    lam_max, one_max = float(lam[-1]), float(one[-1])
    with np.errstate(divide="ignore", invalid="ignore"):  # an all-zero layer: inf or NaN, as WeightWatcher
        softrank = float(np.float64(one_max) / np.float64(lam_max))
    return {
        "rand_distance": _core.jensen_shannon_distance(lam, one),
        "ww_softrank": softrank,
        "ww_maxdist": lam_max - one_max,
        "max_rand_eval": float(rand[-1]),
        "rand_num_spikes": fit.num_spikes,
        "num_traps": fit.num_spikes,
        "rand_sigma_mp": fit.sigma_mp,
        "rand_mp_softrank": fit.mp_softrank,
        "rand_W_scale": fit.W_scale,
        "rand_bulk_max": fit.bulk_max,
        "rand_bulk_min": fit.bulk_min,
        "rand_mp_status": fit.status,
    }
