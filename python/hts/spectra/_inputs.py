"""Input checks shared by the spectra modules: kernel arrays, eigenvalue vectors, sizes, seeds, errors."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

ArrayLike = Any
_PRECISIONS = ("float64", "float32")
_ARRAY_PREFIX = re.compile(r"^array (\d+)(?:, |: )")  # how the kernel names the array of a batch
_SEED_LIMIT = 2**64


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


def _named_error(err: ValueError, name: str, *, keep_array: bool = True) -> ValueError:
    """The kernel's error with the layer's name; a ``BatchItemError`` when the kernel named the array of a
    batch ("array i, slice s: ...", kept in the message when ``keep_array``)."""
    match = _ARRAY_PREFIX.match(str(err))
    if not match:
        return ValueError(f"layer {name!r}: {err}")
    detail = str(err)[match.end():]
    return BatchItemError(f"layer {name!r}: {err if keep_array else detail}", int(match.group(1)), detail)


def _eigenvalue_vector(evals: ArrayLike, what: str) -> np.ndarray:
    arr = np.asarray(evals)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{what}: expected real eigenvalues, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise TypeError(f"{what}: expected a 1-D array of eigenvalues, got shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float64)


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


def _seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not 0 <= int(seed) < _SEED_LIMIT:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    return int(seed)
