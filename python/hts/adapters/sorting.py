"""Sorting tensor names: natural order (``layers.2`` before ``layers.10``), and an argsort that holds no sort key
per name, for files of very many tensors (docs/formats.md, "Limits")."""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["CHUNK", "digits_value", "lean_argsort", "natural_key"]


def natural_key(name: str) -> list:
    """Sort key that orders ``layers.2`` before ``layers.10``.

    The split leaves text at even places and runs of decimal digits at odd ones, so two keys always compare
    str with str and int with int (``str.isdigit`` is no test: it is true for ``"²"``, which ``int`` refuses).
    """
    return [digits_value(p) if i % 2 else p for i, p in enumerate(_DIGITS.split(name))]


_DIGITS = re.compile(r"(\d+)")
#: Runs of more digits than this sort after every shorter number, by their length (``int`` refuses to read more
#: than 4300 digits, and reading a hostile million-digit name would take quadratic time anyway).
MAX_DIGITS = 4000
_HUGE = 10**MAX_DIGITS


def digits_value(run: str) -> int:
    """The number a run of decimal digits spells (see ``MAX_DIGITS`` for very long runs)."""
    return int(run) if len(run) <= MAX_DIGITS else _HUGE + len(run)


#: ``lean_argsort`` sorts this many names at a time.
CHUNK = 8192


def lean_argsort(names: Sequence[str], key: Callable[[str], Any]) -> np.ndarray:
    """``sorted(range(len(names)), key=lambda i: key(names[i]))`` as int32, without a sort key per name alive at
    once (a key is a tuple and lists, ~0.5 KB per name): chunks of ``CHUNK`` names are sorted, kept as int32
    positions, and merged, so a file of 200,000 tiny tensors is ordered in a few MB besides its names. Equal keys
    keep their input order, as in ``sorted`` (``heapq.merge`` takes equal items from the earlier run first)."""
    n = len(names)
    if n <= CHUNK:
        return np.array(sorted(range(n), key=lambda i: key(names[i])), dtype=np.int32).reshape(n)
    runs = [np.array(sorted(range(s, min(s + CHUNK, n)), key=lambda i: key(names[i])), dtype=np.int32)
            for s in range(0, n, CHUNK)]
    return np.fromiter(heapq.merge(*(map(int, r) for r in runs), key=lambda i: key(names[i])), np.int32, n)
