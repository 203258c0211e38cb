"""A long list of row dicts as pandas frames of ``CHUNK_ROWS`` rows each, written one after another, with the
column types the whole table would have had: the command line streams a table of a tensor flood (200,000 rows)
to csv without holding every row (docs/formats.md, "Limits").

pandas infers a column's type from its values (ints with a missing value become float64, bools with a missing
value object, ...). A chunk alone could infer another type (only ints: int64) and so write ``3`` where the whole
table writes ``3.0``. So a first pass notes one example of each kind of value per column (its type, NaN or not,
sign, missing), pandas infers each column's type from those examples exactly as from all values, and each chunk
is made of the raw values (as an object column of the whole table holds them) and cast to those types.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence

__all__ = ["CHUNK_ROWS", "Scan", "frames"]

#: Rows per frame (~2 KiB per row while a frame is made and written).
CHUNK_ROWS = 1024


def _kind(value) -> tuple:
    """What pandas' type inference looks at in a value: its type, and for numbers NaN, sign and int64 range."""
    t = type(value)
    if isinstance(value, float):  # numpy's float64 too
        return t, math.isnan(value)
    if t is int:
        return t, value < 0, value >= 2**63, value < -2**63
    return (t,)


class Scan:
    """One pass over the rows: the keys present (and in how many rows), and one example of each kind of value per
    key. ``weighted``: ``(row, count)`` pairs, each row standing for ``count`` rows with the same keys and kinds
    of values (``AnalysisRows.weighted_sample``)."""

    def __init__(self, rows: Iterable[dict] = (), *, weighted: Iterable[tuple[dict, int]] = ()) -> None:
        self.examples: dict = {}
        self.seen: dict = {}
        self.n = 0
        examples, seen = self.examples, self.seen
        for rows_counted in (((row, 1) for row in rows), weighted):
            for row, count in rows_counted:
                self.n += count
                for c, v in row.items():
                    if c in seen:
                        seen[c] += count
                    else:
                        seen[c], examples[c] = count, {}
                    examples[c].setdefault(_kind(v), v)

    def types(self, columns: Sequence[str]) -> dict:
        """The dtype pandas gives each column of ``pd.DataFrame(list(rows), columns=columns)``."""
        import pandas as pd

        out = {}
        for c in columns:
            rep = [{c: v} for v in self.examples.get(c, {}).values()] + ([{}] if self.seen.get(c, 0) < self.n else [])
            out[c] = pd.DataFrame(rep, columns=[c]).dtypes[c]
        return out


def frames(rows: Iterable[dict], columns: list[str], types: dict, *, chunk: int | None = None) -> Iterator:
    """``pd.DataFrame(list(rows), columns=columns)`` cast to ``types`` (``Scan.types`` of the whole table), in
    frames of ``chunk`` rows (``CHUNK_ROWS``); at least one frame, empty if need be."""
    import pandas as pd

    chunk = chunk or CHUNK_ROWS
    part: list = []
    made_any = False

    def made():  # the raw values (as the whole table keeps them in an object column), then each column's type
        df = pd.DataFrame(part, columns=columns, dtype=object)
        return df.astype({c: dtype for c, dtype in types.items() if dtype != object})

    for row in rows:
        part.append(row)
        if len(part) == chunk:
            yield made()
            made_any, part = True, []
    if part or not made_any:
        yield made()
