"""Loaded weights the kernel cannot take, and how a row says why (see docs/serving.md, "Row statuses").

These checks run only on a layer's own array, after it is loaded; they never stop the rest of the model.
"""

from __future__ import annotations

import numpy as np

__all__ = ["nonfinite_reason", "unsupported_dtype_reason"]


def unsupported_dtype_reason(w: np.ndarray) -> str:
    """Why the kernel cannot take ``w``'s dtype ("" when it can: real floating point or integer)."""
    w = np.asarray(w)
    kind = w.dtype.kind
    if kind in "fiu":
        return ""
    what = {"b": "boolean", "c": "complex", "O": "object", "U": "text", "S": "bytes", "V": "structured",
            "M": "datetime", "m": "timedelta"}.get(kind, "non-numeric")
    return f"unsupported dtype {w.dtype} ({what}): only real floating-point and integer weights are analysed"


def nonfinite_reason(w: np.ndarray) -> str:
    """``"non-finite weights: 2 NaN, 1 +Inf, 0 -Inf among 30000 entries (first at [3, 4])"``, or "" when
    every entry of ``w`` is finite. The index is in ``w``'s layout (the tensor as stored)."""
    w = np.asarray(w)
    if w.dtype.kind not in "fc":
        return ""
    finite = np.isfinite(w)
    if finite.all():
        return ""
    nan = int(np.count_nonzero(np.isnan(w)))
    pos = int(np.count_nonzero(np.isposinf(w)))
    neg = int(w.size - nan - pos - np.count_nonzero(finite))
    first = [int(i) for i in np.unravel_index(int(np.argmin(finite.ravel())), w.shape)]
    return (f"non-finite weights: {nan} NaN, {pos} +Inf, {neg} -Inf among {w.size} entries "
            f"(first at {first})")
