"""A sequence of ``WeightTensor`` records made one at a time, for readers of files that may list very many
tensors: the reader keeps its listing as columns and a subclass makes record ``i`` from them (``_make``), so a
file of 200,000 tiny tensors costs a few dozen bytes per tensor, not a Python record each (docs/formats.md,
"Limits")."""

from __future__ import annotations

import operator
from collections.abc import Iterator, Sequence

from .base import WeightTensor

__all__ = ["LazyTensors"]


class LazyTensors(Sequence):
    """``len``, indexing (negative too), slices (as lists) and iteration, like the list a reader used to return;
    each access makes a new, equal record."""

    __slots__ = ()

    def __len__(self) -> int:  # pragma: no cover - subclasses say
        raise NotImplementedError

    def _make(self, i: int) -> WeightTensor:  # pragma: no cover - subclasses say
        raise NotImplementedError

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._make(j) for j in range(*i.indices(len(self)))]
        n = len(self)
        i = operator.index(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"tensor index {i} out of range for {n} tensors")
        return self._make(i)

    def __iter__(self) -> Iterator[WeightTensor]:
        for i in range(len(self)):
            yield self._make(i)
