"""Which layers to analyse: one filter for ``hts.analyze(layers=...)`` and the command line's ``--layers``.

Entries (a single one, or a list):

- an int ≥ 0 keeps that layer id; a negative int ``-k`` excludes layer id ``k``;
- a layer type (``"dense"``, ``"conv2d"``, ``"conv1d"``, ``"embedding"``, ``"norm"``, …) keeps that type;
- any other string is a shell pattern (``fnmatch``: ``*``, ``?``, ``[...]``; an exact name is a pattern
  too) matched against a tensor's short ``name``, its ``longname`` and its ``key``;
- a string starting with ``-`` excludes what the rest of it would keep (``"-lm_head"``, ``"-*.mlp.*"``).

The kept entries (if any; none means "all") are applied first, then the exclusions, so ``["dense", "-lm_head"]``
reads "every dense layer but lm_head" (WeightWatcher refuses to mix the two kinds: docs row 27).
"""

from __future__ import annotations

import fnmatch
import logging
from array import array
from collections.abc import Iterable, Sequence

from .adapters.base import LAYER_TYPES, WeightTensor
from .adapters.lazy import LazyTensors

__all__ = ["layer_entries", "parse_layer_filter", "renumber", "select"]

logger = logging.getLogger("hts")


def layer_entries(layers) -> list:
    """``layers`` as a list of entries; TypeError for anything but ints, strings or a list of them."""
    if isinstance(layers, (int, str)) and not isinstance(layers, bool):
        return [layers]
    if isinstance(layers, (bytes, bool, float)) or not isinstance(layers, Iterable):
        raise TypeError(f"layers must be a layer id (int), a layer type, a name pattern (str) or a list of "
                        f"them, got {layers!r} ({type(layers).__name__})")
    items = list(layers)
    bad = [x for x in items if isinstance(x, bool) or not isinstance(x, (int, str))]
    if bad:
        raise TypeError(f"layers entries must be ints (layer ids) or strings (types, name patterns), got "
                        f"{bad[0]!r} ({type(bad[0]).__name__})")
    return items


def renumber(tensors: Sequence[WeightTensor], start_ids: int) -> Sequence[WeightTensor]:
    """WeightWatcher's ``start_ids``: 0 keeps the ids; s > 0 shifts them so that the first position gets s.

    A torch module's ids count ``named_modules()`` from 0 (the root), every other source counts its tensors
    from 1, so the shift is s for a module and s − 1 otherwise (WeightWatcher's ``start_ids=1`` on a module:
    root 1; on a state dict: unchanged).
    """
    if not start_ids:
        return tensors if isinstance(tensors, Sequence) else list(tensors)
    if isinstance(tensors, LazyTensors):  # stays lazy: a record is renumbered when it is made
        return _Renumbered(tensors, start_ids)
    return [_renumbered(t, start_ids) for t in tensors]


def _renumbered(t: WeightTensor, start_ids: int) -> WeightTensor:
    from dataclasses import replace

    return replace(t, layer_id=t.layer_id + start_ids - (0 if t.source == "torch.nn.Module" else 1))


class _Renumbered(LazyTensors):
    """``renumber`` of a lazy sequence, itself lazy."""

    __slots__ = ("_base", "_start")

    def __init__(self, base: LazyTensors, start_ids: int) -> None:
        self._base, self._start = base, start_ids

    def __len__(self) -> int:
        return len(self._base)

    def _make(self, i: int) -> WeightTensor:
        return _renumbered(self._base[i], self._start)


class _Subset(LazyTensors):
    """The records of a lazy sequence at some positions (``select``'s result), itself lazy."""

    __slots__ = ("_base", "_positions")

    def __init__(self, base: LazyTensors, positions: array) -> None:
        self._base, self._positions = base, positions

    def __len__(self) -> int:
        return len(self._positions)

    def _make(self, i: int) -> WeightTensor:
        return self._base[self._positions[i]]


def _matcher(entry):
    if isinstance(entry, int):
        return lambda t: t.layer_id == entry
    if entry in LAYER_TYPES:
        return lambda t: t.layer_type == entry
    return lambda t: (fnmatch.fnmatchcase(t.name, entry) or fnmatch.fnmatchcase(t.longname, entry)
                      or fnmatch.fnmatchcase(t.key, entry))


def select(tensors: Sequence[WeightTensor], layers, *, warn: bool = True) -> Sequence[WeightTensor]:
    """The tensors ``layers`` keeps, in model order (see the module docstring). ``None`` or ``[]`` keeps all.
    Logs a warning when the filter keeps nothing. TypeError for entries that are not ints or strings."""
    if layers is None:
        return tensors if isinstance(tensors, Sequence) else list(tensors)
    items = layer_entries(layers)
    keep = [_matcher(x) for x in items if (isinstance(x, int) and x >= 0) or (isinstance(x, str)
                                                                            and not x.startswith("-"))]
    drop = [_matcher(-x if isinstance(x, int) else x[1:]) for x in items
            if (isinstance(x, int) and x < 0) or (isinstance(x, str) and x.startswith("-"))]
    def kept(t):
        return (not keep or any(m(t) for m in keep)) and not any(m(t) for m in drop)

    if isinstance(tensors, LazyTensors):  # stays lazy: only the kept positions are held
        out = _Subset(tensors, array("q", (i for i, t in enumerate(tensors) if kept(t))))
    else:
        out = [t for t in tensors if kept(t)]
    if warn and items and not out:
        logger.warning("layers=%r keeps none of the model's %d tensors", layers, len(tensors))
    return out


def parse_layer_filter(text: str | None) -> list | None:
    """The command line's ``--layers`` text as ``select`` entries: comma-separated ids (``-3`` excludes id 3),
    layer types and name patterns (``-pattern`` excludes)."""
    if text is None:
        return None
    out: list = []
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        out.append(int(item) if item.lstrip("-").isdigit() else item)
    return out
