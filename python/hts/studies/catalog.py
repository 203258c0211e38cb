"""A study's catalog: which models, in which series, with which reported accuracy.

A catalog is a CSV (or a list of dicts, or a pandas DataFrame) with one row per model:

=============  ======================================================================================
column         meaning
=============  ======================================================================================
``path``       the model: a file or folder in any format ``hts.open`` reads (required); a relative
               path is taken from the CSV's folder
``name``       the model's name in every table (default: the file stem or folder name); unique
``series``     the series it belongs to (default: ``"series"``)
``accuracy``   reported accuracy in % (or ``error``/``top1_error_pct``: accuracy = 100 − error);
               optional: without it the study still gives every metric, only no accuracy statistics
``step``       training step or epoch, for checkpoint series (optional, numeric)
``tags``       free text (optional)
=============  ======================================================================================

Other columns are kept as they are (strings) in ``Study.models``.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..report.compare import ACCURACY_COLUMNS, ERROR_COLUMNS

__all__ = ["CatalogEntry", "read_catalog"]

_KNOWN = {"path", "name", "model", "series", "step", "tags"} | set(ACCURACY_COLUMNS) | set(ERROR_COLUMNS)


@dataclass(frozen=True)
class CatalogEntry:
    """One model of a study."""

    name: str
    path: str
    series: str = "series"
    accuracy: float | None = None
    step: float | None = None
    tags: str = ""
    extra: dict = field(default_factory=dict, compare=False)


def _number(value: Any, what: str, where: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {what} {value!r} is not a number") from None
    if math.isnan(x):
        return None
    if not math.isfinite(x):
        raise ValueError(f"{where}: {what} {value!r} is not finite")
    return x


def _accuracy(row: dict, where: str) -> float | None:
    for column in ACCURACY_COLUMNS:
        x = _number(row.get(column), column, where)
        if x is not None:
            return x
    for column in ERROR_COLUMNS:
        x = _number(row.get(column), column, where)
        if x is not None:
            return 100.0 - x
    return None


def _rows(catalog: Any) -> tuple[list[dict], Path | None, str]:
    """The catalog's rows as dicts, the folder relative paths are taken from, and a name for messages."""
    if isinstance(catalog, (str, os.PathLike)):
        path = Path(catalog)
        try:
            with open(path, newline="", encoding="utf-8") as f:
                rows = [dict(r) for r in csv.DictReader(f)]
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: catalog not found") from None
        except UnicodeDecodeError as err:
            raise ValueError(f"{path}: not a UTF-8 CSV catalog ({err.reason})") from None
        return rows, path.resolve().parent, str(path)
    if hasattr(catalog, "to_dict") and hasattr(catalog, "columns"):  # a pandas DataFrame
        return catalog.to_dict("records"), None, "catalog"
    rows = list(catalog)
    if not all(isinstance(r, dict) for r in rows):
        raise TypeError("a catalog is a CSV path, a pandas DataFrame, or a list of dicts (one per model)")
    return [dict(r) for r in rows], None, "catalog"


def read_catalog(catalog: Any, *, check_paths: bool = True) -> list[CatalogEntry]:
    """The entries of a catalog (see the module docstring for its columns), checked before any analysis.

    Raises ``ValueError`` naming the row for a missing ``path`` column or value, a duplicate name, a
    non-numeric accuracy/step; ``FileNotFoundError`` naming the row and path for a model that does not
    exist (with ``check_paths``).
    """
    rows, base, label = _rows(catalog)
    if not rows:
        raise ValueError(f"{label}: the catalog has no models")
    entries: list[CatalogEntry] = []
    seen: dict[str, int] = {}
    for i, row in enumerate(rows, start=1):
        where = f"{label}, row {i}"
        raw_path = row.get("path")
        if raw_path is None or not str(raw_path).strip():
            raise ValueError(f"{where}: no 'path' (each row names a model file or folder)")
        p = Path(str(raw_path).strip()).expanduser()
        if not p.is_absolute() and base is not None:
            p = base / p
        if check_paths and not p.exists():
            raise FileNotFoundError(f"{where}: {p} does not exist")
        name = str(row.get("name") or row.get("model") or "").strip() or (p.stem if p.suffix else p.name)
        if name in seen:
            raise ValueError(f"{where}: model name {name!r} is also row {seen[name]}; names must be unique "
                             "(add a 'name' column)")
        seen[name] = i
        extra = {k: v for k, v in row.items() if k not in _KNOWN and k is not None}
        entries.append(CatalogEntry(
            name=name, path=str(p), series=str(row.get("series") or "series").strip() or "series",
            accuracy=_accuracy(row, where), step=_number(row.get("step"), "step", where),
            tags=str(row.get("tags") or ""), extra=extra))
    return entries
