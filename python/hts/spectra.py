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
from dataclasses import asdict, dataclass
from typing import Any, Sequence, Union

import numpy as np

from ._native import _core
from ._threads import available_cores, resolve_threads

__all__ = [
    "PowerLawFit",
    "SpectrumMetrics",
    "conv_operator_eigenvalues",
    "eigenvalues",
    "fit_power_law",
    "frobenius_norm",
    "kernel_info",
    "log_alpha_norm",
    "spectrum_metrics",
]

ArrayLike = Any
_PRECISIONS = ("float64", "float32")


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
        with ``numpy.linalg.svd(w)**2`` to about ``M·1e-16·λ_max`` absolute. ``"float32"`` is ~2× faster on
        large layers, but its absolute error is about ``M·6e-8·λ_max``, so eigenvalues below ~1e-6·λ_max
        carry little or no relative accuracy (the Gram product squares the condition number).
    threads : int, optional
        Native threads (default: the cores this process may use, capped by ``OMP_NUM_THREADS``). Results
        are bit-identical for every thread count.
    name : str
        Layer name used in error messages.

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
        out = _core.gram_eigenvalues(arrays, precision, resolve_threads(threads))
    except ValueError as err:
        where = str(err) if batch else str(err).replace("array 0, ", "", 1).replace("array 0: ", "", 1)
        raise ValueError(f"layer {name!r}: {where}") from None
    return out if batch else out[0]


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

    Returns
    -------
    ndarray, shape (n1·n2, min(out, in)), float64 (or float32 with ``precision="float32"``)
        Row u·n2 + v holds the ascending eigenvalues of frequency (u, v) (the order of
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
    if arr.dtype != target or not arr.dtype.isnative or not arr.flags.aligned:
        arr = arr.astype(target.newbyteorder("="), order="K")
    try:
        return _core.conv_operator_eigenvalues(arr, n1, n2, precision, resolve_threads(threads))
    except ValueError as err:
        raise ValueError(f"layer {name!r}: {err}") from None
