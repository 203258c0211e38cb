"""The results store of a study: an SQLite database (standard library, WAL mode) of finished tasks.

One row per finished task (a model, or a group of its layers), keyed by ``task_key``: a hash of the model's
identity (its files' size, mtime and inode, or their content hash), the analysis options, hts's version and
the task's layer ids (``hts.studies.tasks``). The task's result rows are stored as one JSON text in the same
row, written in one transaction, so a run killed at any moment (SIGKILL included) leaves every task either
complete or absent: never half-written, never duplicated (``INSERT OR IGNORE`` on the primary key). Several
runs may share a store at once: SQLite serialises their writes (WAL, a busy timeout), and a task two runs
both finish is kept once.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Iterable

__all__ = ["ResultStore"]

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    task_key TEXT PRIMARY KEY,
    model_key TEXT NOT NULL,
    options_key TEXT NOT NULL,
    hts_version TEXT NOT NULL,
    model TEXT NOT NULL,
    layer_ids TEXT NOT NULL,
    rows TEXT NOT NULL,
    seconds REAL NOT NULL,
    finished REAL NOT NULL
);
"""


def _plain(x: Any) -> Any:
    """numpy scalars → Python numbers, tuples → lists (NaN/inf kept: the store round-trips them)."""
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        return x.item()
    if isinstance(x, Sequence):  # ``Analysis.rows``: a read-only sequence of dicts
        return list(x)
    raise TypeError(f"cannot store a {type(x).__name__}")


def dumps_rows(rows: list[dict]) -> str:
    """JSON text of result rows; NaN and ±inf survive (``json`` writes them as NaN/Infinity)."""
    return json.dumps(rows, default=_plain, separators=(",", ":"))


def loads_rows(text: str) -> list[dict]:
    """Rows as stored (JSON has no tuples: shapes come back as lists, as from any JSON export)."""
    return json.loads(text)


class ResultStore:
    """Finished study tasks in an SQLite file (``":memory:"`` for a store that lives only for this run).

    Only the process that drives a study writes to its store; workers return their rows to it.
    """

    def __init__(self, path: str | Path = ":memory:", *, timeout: float = 60.0) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            parent = Path(self.path).resolve().parent
            if not parent.is_dir():
                raise FileNotFoundError(f"{self.path}: folder {parent} does not exist")
        try:
            self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
            self._db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            if self.path != ":memory:":
                self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.executescript(_SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            found = self._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0]
        except sqlite3.DatabaseError as err:
            raise ValueError(f"{self.path}: not a usable hts results store ({err})") from None
        if found != SCHEMA_VERSION:
            raise ValueError(f"{self.path}: results store schema {found}, this hts writes {SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def done(self, task_keys: Iterable[str]) -> set[str]:
        """Which of these tasks are finished."""
        keys = list(task_keys)
        out: set[str] = set()
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            q = f"SELECT task_key FROM results WHERE task_key IN ({','.join('?' * len(chunk))})"
            out.update(k for (k,) in self._db.execute(q, chunk))
        return out

    def put(self, task, rows: list[dict], seconds: float) -> bool:
        """Store a finished task (one transaction); False when it was already there (another run)."""
        cur = self._db.execute(
            "INSERT OR IGNORE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (task.key, task.model_key, task.options_key, task.hts_version, task.model,
             json.dumps(task.layer_ids), dumps_rows(rows), float(seconds), time.time()))
        return cur.rowcount == 1

    def rows(self, task_key: str) -> list[dict]:
        found = self._db.execute("SELECT rows FROM results WHERE task_key = ?", (task_key,)).fetchone()
        if found is None:
            raise KeyError(task_key)
        return loads_rows(found[0])

    def seconds(self, task_key: str) -> float:
        found = self._db.execute("SELECT seconds FROM results WHERE task_key = ?", (task_key,)).fetchone()
        return float(found[0]) if found else float("nan")

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def check(self) -> str:
        """SQLite's own integrity check ("ok" for a sound file)."""
        return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])
