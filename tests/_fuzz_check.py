"""The outcome every fuzzed model file must have, whatever its format (shared by the tests/test_fuzz_*.py files
and bench/fuzz_*.py): ``hts.open`` and every tensor's ``load`` either work or raise ``hts.ModelFileError``
naming the file; no other exception; Python allocation bounded by the file's size.
"""

from __future__ import annotations

import os
import tracemalloc

import numpy as np

import hts

#: Fixed allocation slack (bytes) on top of the per-format multiple of the file size.
SLACK = 4 * 2**20


def _named(err: hts.ModelFileError, path: str, also: tuple = ()) -> None:
    text = str(err)
    assert str(path) in text or any(a in text for a in also), f"error does not name the file: {text}"


def check(path, also: tuple = ()) -> str:
    """Open ``path`` and load every tensor. Returns "read" (listed; tensors loaded or each refused with a
    ModelFileError naming the file) or "refused" (hts.open raised a ModelFileError naming the file). ``also``:
    other names an error may carry instead of the path (an external data file next to it)."""
    try:
        tensors = list(hts.open(path))
    except hts.ModelFileError as err:
        _named(err, path, also)
        return "refused"
    for t in tensors:
        try:
            w = t.load()
        except hts.ModelFileError as err:
            _named(err, path, also)
            continue
        assert isinstance(w, np.ndarray) and w.shape == t.shape, (t.key, getattr(w, "shape", None), t.shape)
        assert w.dtype.kind in "fiub", (t.key, w.dtype)  # numbers, never objects or strings
        del w
    return "read"


def check_bounded(path, widen: float, *, also: tuple = (), analyze: bool = False, size: int | None = None) -> str:
    """``check`` with Python allocation (tracemalloc must be running) bounded by ``widen`` x the file's size
    (``size`` when given: a folder's files together) + ``SLACK``; optionally ``hts.analyze`` too."""
    size = os.path.getsize(path) if size is None else size
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    outcome = check(path, also)
    if analyze and outcome == "read":
        try:
            hts.analyze(path)
        except hts.ModelFileError as err:
            _named(err, path, also)
    peak = tracemalloc.get_traced_memory()[1] - before
    assert peak <= widen * size + SLACK, f"allocated {peak} bytes for a {size}-byte input"
    return outcome
