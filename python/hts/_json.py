"""Plain-data helpers shared by the result objects (Analysis, Comparison): strict JSON, NaN tests."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["isnan", "jsonable"]


def isnan(x: Any) -> bool:
    return isinstance(x, float) and math.isnan(x)


def jsonable(x: Any) -> Any:
    """``x`` as plain JSON types: dict keys as str, tuples as lists, numpy scalars as Python numbers, and NaN and
    ±inf as None (strict JSON has no NaN)."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x
