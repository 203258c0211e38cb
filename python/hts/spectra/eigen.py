"""Eigenvalues of weight matrices (the ESD) and the norms and build facts that need no eigenvalues."""

from __future__ import annotations

import math
from typing import Any, Sequence, Union

from .._native import _core
from .._threads import available_cores, resolve_threads
from ._inputs import _PRECISIONS, ArrayLike, _kernel_array, _named_error


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
