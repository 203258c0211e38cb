"""Plain-data helpers shared by the result objects (Analysis, Comparison): strict JSON, NaN tests."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any, Iterable, Iterator

import numpy as np

__all__ = ["isnan", "json_parts", "jsonable"]


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
    if isinstance(x, Sequence) and not isinstance(x, (str, bytes, bytearray)):  # ``Analysis.rows``
        return [jsonable(v) for v in x]
    return x


def json_parts(head: dict, key: str, items: Iterable, *, indent: int | None = None, **options) -> Iterator[str]:
    """The text of ``json.dumps({**head, key: list(items)}, indent=indent, **options)`` in parts, one item at a
    time (``key`` must not be in ``head``): a long list is written without holding all of it."""
    if indent is None:
        sep, item_sep, end = "", ", ", ""
        pad = ""
    else:
        pad = " " * indent if isinstance(indent, int) else indent
        sep, item_sep, end = "\n" + pad * 2, ",\n" + pad * 2, "\n" + pad
    text = json.dumps(head, indent=indent, **options)
    if head:
        yield text[:-1].rstrip(" \n") + ("," if indent is None else ",\n" + pad) + \
            (" " if indent is None else "")
    else:
        yield "{" + ("\n" + pad if indent is not None else "")
    yield json.dumps(key) + ": ["
    first = True
    for item in items:
        text = json.dumps(item, indent=indent, **options)
        if indent is not None:
            text = text.replace("\n", "\n" + pad * 2)
        yield (sep if first else item_sep) + text
        first = False
    yield "]" if first else end + "]"
    yield "}" if indent is None else "\n}"
