"""A study's tasks: what each worker computes, and the keys that say whether it is already done.

A task is one model, or — for a model whose weights exceed the worker budget — one group of its layers
(consecutive layer ids, so each worker reads only its own tensors from shared storage; weights never travel
through the scheduler). Its key hashes

- the model's identity: for each of its files (the file, or every file under the folder but hidden ones) the
  relative name, size, mtime and inode (``identity="stat"``, free), or the SHA-256 of its bytes
  (``identity="content"``, which survives copies and touch but reads every byte once);
- the analysis options that change results (not ``threads``, ``progress``, ``cancel``, ``time_budget``:
  results are bit-identical for every thread count);
- hts's version and the task's layer ids.

So a re-run skips what is done, and a changed file, option or hts version is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

__all__ = ["IDENTITIES", "Task", "model_files", "model_key", "options_key", "plan_model", "run_task"]

IDENTITIES = ("stat", "content")

#: Options that never change a result, left out of the key.
_NOT_IN_KEY = {"threads", "progress", "cancel", "time_budget"}


@dataclass(frozen=True)
class Task:
    """One unit of work: ``hts.analyze(path, layers=layer_ids)`` (``layer_ids`` None: the whole model)."""

    key: str
    model: str
    path: str
    layer_ids: tuple | None
    model_key: str
    options_key: str
    hts_version: str
    cost: float
    n_layers: int
    part: int = 0
    parts: int = 1


def model_files(path: str | Path) -> list[Path]:
    """The files a model consists of: the file itself, or every regular file under the folder except hidden
    ones (names starting with "."), in a fixed order."""
    p = Path(path)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise FileNotFoundError(f"{p}: no such model file or folder")
    out = []
    for root, dirs, files in os.walk(p, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out += [Path(root) / f for f in sorted(files) if not f.startswith(".")]
    return [f for f in out if f.is_file()]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def model_key(path: str | Path, identity: str = "stat") -> str:
    """Hash of the model's identity (see the module docstring)."""
    if identity not in IDENTITIES:
        raise ValueError(f"identity must be one of {IDENTITIES}, got {identity!r}")
    p = Path(path)
    parts = []
    for f in model_files(p):
        rel = f.name if f == p else str(f.relative_to(p))
        if identity == "content":
            parts.append([rel, _sha256(f)])
        else:
            st = f.stat()
            parts.append([rel, st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev])
    return hashlib.sha256(json.dumps([identity, parts]).encode()).hexdigest()


def options_key(options: dict) -> str:
    """Hash of the analysis options that change results."""
    kept = {k: v for k, v in sorted(options.items()) if k not in _NOT_IN_KEY}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()


def _cost(shape: tuple) -> float:
    """Multiply-adds of the Gram product and eigensolve of a tensor's slices (a size estimate for ordering)."""
    if len(shape) < 2:
        return 0.0
    a, b = int(shape[0]), int(shape[1])
    rf = math.prod(int(s) for s in shape[2:])
    small = min(a, b)
    return float(rf) * (a * b * small + small**3)


def _groups(tensors: Iterable) -> list[tuple[int, int, float, int]]:
    """(layer_id, weight bytes as loaded in float64, cost, analysable tensors) per layer id, in model order."""
    out: dict[int, list] = {}
    for t in tensors:
        g = out.setdefault(t.layer_id, [t.layer_id, 0, 0.0, 0])
        if not t.skip_reason:
            g[1] += t.size * 8
            g[2] += _cost(tuple(t.shape))
            g[3] += 1
    return [tuple(g) for g in out.values()]


def plan_model(name: str, path: str, inventory, options: dict, *, max_task_bytes: float, mkey: str,
               version: str) -> list[Task]:
    """The tasks of one model: one, or consecutive layer groups of at most ``max_task_bytes`` of weights
    each when the model is larger (a layer larger than that is a task alone). With ``randomize`` the model is
    never split: its shuffle seeds depend on each layer's position in the analysed list."""
    okey = options_key(options)
    groups = _groups(inventory.tensors)
    total = sum(g[1] for g in groups)
    chunks: list[list] = []
    if total <= max_task_bytes or options.get("randomize") or len(groups) < 2:
        chunks = [groups]
    else:
        current, size = [], 0
        for g in groups:
            if current and size + g[1] > max_task_bytes:
                chunks.append(current)
                current, size = [], 0
            current.append(g)
            size += g[1]
        chunks.append(current)
    tasks = []
    for part, chunk in enumerate(chunks):
        ids = None if len(chunks) == 1 else tuple(g[0] for g in chunk)
        key = hashlib.sha256(json.dumps([mkey, okey, version, ids]).encode()).hexdigest()
        tasks.append(Task(key=key, model=name, path=path, layer_ids=ids, model_key=mkey, options_key=okey,
                          hts_version=version, cost=sum(g[2] for g in chunk), n_layers=sum(g[3] for g in chunk),
                          part=part, parts=len(chunks)))
    return tasks


def run_task(path: Any, layer_ids: tuple | None, options: dict) -> tuple[list[dict], float]:
    """What a worker runs: ``hts.analyze`` of the model at ``path`` (only ``layer_ids`` when given), read
    by the worker itself (in this process, ``path`` may be the inventory planning already opened). Returns
    the rows and the seconds it took."""
    from ..analysis import analyze

    t0 = time.perf_counter()
    result = analyze(path, layers=list(layer_ids) if layer_ids is not None else None, **options)
    return list(result.rows), time.perf_counter() - t0
