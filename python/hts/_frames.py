"""A long list of row dicts as pandas frames of ``CHUNK_ROWS`` rows each, written one after another, with the
column types the whole table would have had: the command line streams a table of a tensor flood (200,000 rows)
to csv without holding every row (docs/formats.md, "Limits").

pandas infers a column's type from its values (ints with a missing value become float64, bools with a missing
value object, ...). A chunk alone could infer another type (only ints: int64) and so write ``3`` where the whole
table writes ``3.0``. So a first pass notes one example of each kind of value per column (its type, NaN or not,
sign, missing), pandas infers each column's type from those examples exactly as from all values, and each chunk
is made of the raw values (as an object column of the whole table holds them) and cast to those types.

Text columns stay Python strings whatever is installed: with pyarrow present, pandas 3 would keep them in Arrow,
which refuses a lone surrogate (a tensor name from a JSON "\\ud800" escape, a file name that is not UTF-8), and
``pd.DataFrame(rows)`` itself would fail. So a text column gets pandas' ``str`` dtype with Python storage (what
pandas 3 infers without pyarrow), and ``table`` builds every frame hts makes from rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence

__all__ = ["CHUNK_ROWS", "Scan", "frames", "escaped", "table", "text_column"]

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


def _inferable(value):
    """``value`` as an example for pandas' type inference: a string is inferred as any other string, and a
    plain one passes where Arrow-backed inference would refuse a lone surrogate."""
    return "" if isinstance(value, str) else value


def _python_text(dtype):
    """``dtype``, a text dtype kept in Python strings (pandas 3's ``str`` without pyarrow): Arrow storage
    refuses a lone surrogate."""
    import pandas as pd

    if isinstance(dtype, pd.StringDtype) and dtype.storage != "python":
        return pd.StringDtype("python", na_value=dtype.na_value)
    return dtype


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
        """The dtype pandas gives each column of ``pd.DataFrame(list(rows), columns=columns)``, text kept in
        Python strings."""
        import pandas as pd

        # One small frame for every column at once: row i holds each column's i-th example (cycling: a value seen
        # again changes no inference), or lacks the key where the column's turn is "missing".
        missing = object()
        examples = {c: [_inferable(v) for v in self.examples.get(c, {}).values()]
                    + ([missing] if self.seen.get(c, 0) < self.n else []) for c in columns}
        depth = max(map(len, examples.values()), default=0)
        rep = [{c: e[i % len(e)] for c, e in examples.items() if e and e[i % len(e)] is not missing}
               for i in range(depth)]
        inferred = pd.DataFrame(rep, columns=list(columns)).dtypes
        return {c: _python_text(inferred.iloc[k]) for k, c in enumerate(columns)}


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


def table(rows: Sequence[dict], columns: list[str] | None = None):
    """``pd.DataFrame(list(rows), columns=columns)`` (``columns``: the keys in order of first appearance), with
    text columns kept in Python strings so that any name fits."""
    rows = rows if isinstance(rows, Sequence) else list(rows)
    scan = Scan(rows)
    columns = list(scan.seen) if columns is None else columns
    return next(frames(rows, columns, scan.types(columns), chunk=max(len(rows), 1)))


def text_column(value, n: int):
    """``n`` copies of ``value`` as a column (``df.insert(0, name, text_column(value, len(df)))``), of the type
    pandas infers for it, text kept in Python strings as in ``table``."""
    import pandas as pd

    return pd.Series([value] * n, dtype=_python_text(pd.Series([_inferable(value)]).dtype))


def _escape(value):
    """A text with a lone surrogate as its Python escape (``"\\ud800"``); anything else as it is."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def escaped(df):
    """``df`` with every lone surrogate in its text columns written as its Python escape (``"\\ud800"``), as
    hts's text outputs show it: for writers that must encode UTF-8 (parquet). ``df`` itself when there is
    none."""
    import pandas as pd

    changed = {}
    for c in df.columns:
        col = df[c]
        if col.dtype == object or isinstance(col.dtype, pd.StringDtype):
            new = col.map(_escape, na_action="ignore")
            if not new.equals(col):
                changed[c] = new.astype(col.dtype)
    return df.assign(**changed) if changed else df
