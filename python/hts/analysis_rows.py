"""``Analysis.rows``: the rows of an analysis as a read-only sequence of dicts, with skipped tensors kept compactly.

A file may list up to ``adapters.limits.MAX_TENSORS`` tensors, nearly all of them skipped (empty, 1-D, too small):
a dict per skipped row would cost ~0.8 KiB each (~160 MB for 200,000). So, for a reader that makes its records on
use (``adapters.lazy.LazyTensors``), a skipped tensor is held as a few numbers — its position in that sequence, its
reason and the plan numbers ``metrics.skipped_row`` reports (N, M, rf, conv method) — and its row is made on access:
a new, equal dict each time. Analysed and failed rows (and every row of a list-based model, whose records may hold
the model's own arrays) are held as the dicts they are.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable, Iterator, Sequence

from .adapters.lazy import LazyTensors
from .matrices import LayerPlan
from .metrics import skipped_row

__all__ = ["AnalysisRows", "RowsBuilder"]


class AnalysisRows(Sequence):
    """The rows of an ``Analysis``, in model order: ``len``, indexing (negative too), slices (as lists),
    iteration and ``==`` with a list like the list it used to be; read-only. ``AnalysisRows(list_of_dicts)``
    holds the given rows."""

    __slots__ = ("_stored", "_tensors", "_skip_rows", "_skip_pos", "_skip_reason", "_skip_method", "_skip_n",
                 "_skip_m", "_skip_rf", "_skip_quant", "_strings")

    def __init__(self, rows: Iterable[dict] = ()) -> None:
        self._stored: list = list(rows)
        self._tensors = None
        self._skip_rows = array("q")  # the row index of each compact skipped row, ascending
        self._skip_pos = array("q")  # its position in ``_tensors``
        self._skip_reason = array("l")  # index into ``_strings``
        self._skip_method = array("l")  # index into ``_strings``; -1: no plan (the tensor's own skip reason)
        self._skip_n, self._skip_m, self._skip_rf = array("q"), array("q"), array("q")
        self._skip_quant = array("b")  # 1: the tensor has a ``quant`` (its row has that key)
        self._strings: list[str] = []

    # -- the sequence --------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._stored) + len(self._skip_rows)

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[j] for j in range(*k.indices(len(self)))]
        n = len(self)
        k = k.__index__()
        if k < 0:
            k += n
        if not 0 <= k < n:
            raise IndexError(f"row index {k} out of range for {n} rows")
        j = bisect.bisect_left(self._skip_rows, k)
        if j < len(self._skip_rows) and self._skip_rows[j] == k:
            return self._skipped(j)
        return self._stored[k - j]

    def __iter__(self) -> Iterator[dict]:
        stored = self._stored
        k = 0
        for j, row in enumerate(self._skip_rows):
            while k < row:
                yield stored[k - j]
                k += 1
            yield self._skipped(j)
            k += 1
        yield from stored[k - len(self._skip_rows):]

    def __eq__(self, other) -> bool:
        if not isinstance(other, (AnalysisRows, list, tuple)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<hts.AnalysisRows: {len(self)} rows, {self.skipped_count} skipped>"

    def __reduce__(self):  # a pickle or deep copy holds every row as a dict (not the model's tensor listing)
        return AnalysisRows, (list(self),)

    # -- cheap views for the summaries -----------------------------------------------------------------------
    @property
    def held(self) -> list[dict]:
        """The rows held as dicts, in model order: every row but the compact skipped ones (whose status is
        "skipped", warning "", and which have no role)."""
        return self._stored

    @property
    def skipped_count(self) -> int:
        """How many rows have status "skipped"."""
        return len(self._skip_rows) + sum(r["status"] == "skipped" for r in self._stored)

    def weighted_sample(self) -> Iterator[tuple[dict, int]]:
        """``(row, count)`` pairs that stand for every row: each held row (count 1), then for the compact skipped
        rows one row per class — a ``quant`` or not, Q a number or NaN (no plan, or M = 0) — with the number
        of rows of its class. The rows of a class have the same keys and the same kinds of values (ints and
        strings for the tensor's identity, NaN metrics): what ``hts._frames.Scan`` needs to know of them."""
        for row in self._stored:
            yield row, 1
        first: dict = {}
        counts: dict = {}
        for j in range(len(self._skip_rows)):
            cls = (self._skip_quant[j], self._skip_method[j] >= 0 and self._skip_m[j] > 0)
            if cls in counts:
                counts[cls] += 1
            else:
                first[cls], counts[cls] = j, 1
        for cls, j in first.items():
            yield self._skipped(j), counts[cls]

    def reasons(self) -> Iterator[str]:
        """Each row's ``reason``, in order, without making the compact rows."""
        stored, strings = self._stored, self._strings
        k = 0
        for j, row in enumerate(self._skip_rows):
            while k < row:
                yield stored[k - j].get("reason", "")
                k += 1
            yield strings[self._skip_reason[j]]
            k += 1
        for r in stored[k - len(self._skip_rows):]:
            yield r.get("reason", "")

    def _skipped(self, j: int) -> dict:
        t = self._tensors[self._skip_pos[j]]
        method = self._skip_method[j]
        plan = None if method < 0 else LayerPlan(self._skip_n[j], self._skip_m[j], self._skip_rf[j], 1.0,
                                                 self._strings[method])
        return skipped_row(t, self._strings[self._skip_reason[j]], plan)


class RowsBuilder:
    """Collects the rows of ``hts.analyze`` per tensor position of ``tensors`` (skipped ones compactly when
    ``tensors`` makes its records on use) and ``build()``s the ``AnalysisRows`` in model order."""

    def __init__(self, tensors: Sequence) -> None:
        self.rows = AnalysisRows()
        self.compact = isinstance(tensors, LazyTensors)
        if self.compact:
            self.rows._tensors = tensors
        self._held: dict[int, list[dict]] = {}
        self._ids: dict[str, int] = {}

    def skip(self, i: int, t, reason: str, plan: LayerPlan | None) -> None:
        """Tensor ``i`` (``t``) is skipped for ``reason``; positions must come in ascending order."""
        if not self.compact:
            self._held[i] = [skipped_row(t, reason, plan)]
            return
        r = self.rows
        if r._skip_pos and i <= r._skip_pos[-1]:
            raise ValueError("skipped positions must ascend")
        r._skip_pos.append(i)
        r._skip_reason.append(self._id(reason))
        r._skip_method.append(-1 if plan is None else self._id(plan.method))
        r._skip_n.append(plan.N if plan else 0)
        r._skip_m.append(plan.M if plan else 0)
        r._skip_rf.append(plan.rf if plan else 0)
        r._skip_quant.append(1 if t.quant else 0)

    def put(self, i: int, rows: list[dict]) -> None:
        """The rows of tensor ``i`` (analysed or failed; none is fine)."""
        self._held[i] = rows

    def build(self) -> AnalysisRows:
        r = self.rows
        held = sorted(self._held)
        before = 0  # held rows of the positions before the current skipped one
        k = 0
        for j, pos in enumerate(r._skip_pos):
            while k < len(held) and held[k] < pos:
                before += len(self._held[held[k]])
                k += 1
            r._skip_rows.append(j + before)
        r._stored = [row for i in held for row in self._held[i]]
        r._strings = list(self._ids)
        self._held = {}
        return r

    def _id(self, text: str) -> int:
        got = self._ids.get(text)
        if got is None:
            got = self._ids[text] = len(self._ids)
        return got
