"""The exact spectrum of a Conv2D layer's convolution operator (per-frequency Gram eigenvalues)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._native import _core
from .._threads import resolve_threads
from ._inputs import _PRECISIONS, ArrayLike


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
    stop: Any = None,
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
    stop : hts._core.StopFlag, optional
        Read by the kernel before each frequency and each eigensolve (without the GIL); once it is set (from any
        thread) the call raises ``hts._core.Stopped`` there, so a stop lands within one frequency's Gram
        product or eigensolve, not at the end of the whole spectrum.

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
    hts._core.Stopped
        ``stop`` was set while the call ran.
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
            return _core.conv_operator_eigenvalues(arr, n1, n2, precision, n_threads, stop=stop)
        parts = [_core.conv_operator_eigenvalues(arr[k * per_group:(k + 1) * per_group], n1, n2, precision,
                                                 n_threads, stop=stop) for k in range(groups)]
    except ValueError as err:
        raise ValueError(f"layer {name!r}: {err}") from None
    return np.sort(np.concatenate(parts, axis=1), axis=1)
