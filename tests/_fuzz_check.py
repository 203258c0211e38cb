"""The outcome every fuzzed model file must have, whatever its format (shared by the tests/test_fuzz_*.py files
and bench/fuzz_*.py): ``hts.open`` and every tensor's ``load`` either work or raise ``hts.ModelFileError``
naming the file; no other exception; Python allocation bounded by the file's size.
"""

from __future__ import annotations

import math
import os
import tracemalloc

import numpy as np

import hts

#: Fixed allocation slack (bytes) on top of the per-format multiple of the file size.
SLACK = 4 * 2**20


def _named(err: hts.ModelFileError, path: str, also: tuple = ()) -> None:
    text = str(err)
    assert str(path) in text or any(a in text for a in also), f"error does not name the file: {text}"


def _declared_bytes(t) -> int:
    """The bytes ``t``'s shape declares as loaded (bfloat16 and float16 widen to float32; unknown: 8 a value)."""
    try:
        item = max(np.dtype(t.dtype).itemsize, 4 if np.dtype(t.dtype).kind == "f" else 1)
    except TypeError:
        item = 4 if t.dtype == "bfloat16" else 8
    return math.prod(t.shape) * item


def check(path, also: tuple = (), loaded: list | None = None) -> str:
    """Open ``path`` and load every tensor. Returns "read" (listed; tensors loaded or each refused with a
    ModelFileError naming the file) or "refused" (hts.open raised a ModelFileError naming the file). ``also``:
    other names an error may carry instead of the path (an external data file next to it); ``loaded``: a list
    that receives the byte size of every tensor loaded (or, refused, its declared size)."""
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
            if loaded is not None:  # a load may be refused after allocating the declared tensor
                loaded.append(_declared_bytes(t))
            continue
        assert isinstance(w, np.ndarray) and w.shape == t.shape, (t.key, getattr(w, "shape", None), t.shape)
        assert w.dtype.kind in "fiub", (t.key, w.dtype)  # numbers, never objects or strings
        if loaded is not None:
            loaded.append(w.nbytes)
        del w
    return "read"


def check_bounded(path, widen: float, *, also: tuple = (), analyze: bool = False, size: int | None = None,
                  per_tensor: float = 0.0) -> str:
    """``check`` with Python allocation (tracemalloc must be running) bounded by ``widen`` x the file's size
    (``size`` when given: a folder's files together) + ``per_tensor`` x the largest tensor loaded (for formats
    whose tensors may be larger than their stored bytes: compressed chunks, fill values) + ``SLACK``;
    optionally ``hts.analyze`` too."""
    size = os.path.getsize(path) if size is None else size
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    loaded: list = []
    outcome = check(path, also, loaded)
    if analyze and outcome == "read":
        try:
            hts.analyze(path)
        except hts.ModelFileError as err:
            _named(err, path, also)
    peak = tracemalloc.get_traced_memory()[1] - before
    bound = widen * size + per_tensor * max(loaded, default=0) + SLACK
    assert peak <= bound, f"allocated {peak} bytes for a {size}-byte input (largest tensor {max(loaded, default=0)})"
    return outcome
