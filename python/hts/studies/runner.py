"""Running a study's tasks: in this process, on a local process pool, or on any ``concurrent.futures``
executor (e.g. Dask distributed's ``Client.get_executor()``).

The driver (this process) alone writes the store: each finished task is stored in one transaction as soon as
it arrives, so whatever stops the run — Ctrl-C, ``time_budget``, SIGKILL — every finished task is kept and
the next run resumes with the rest. Tasks are submitted largest first. A task whose worker died (a crashed or
killed process: ``BrokenProcessPool``, Dask's ``KilledWorker``, a lost connection) is submitted again, up to
``retries`` times; a task that fails with an error (an unreadable file, say) is reported, not retried.
Results do not depend on the executor: each task is the same ``hts.analyze`` call, whose numbers are
bit-identical for every thread count.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .store import dumps_rows, loads_rows
from .tasks import Task, run_task

__all__ = ["EXECUTORS", "Outcome", "run_tasks"]

logger = logging.getLogger("hts")

#: Executors by name (an Executor instance is also accepted).
EXECUTORS = ("process", "serial")

#: Exception type names that mean "the worker was lost", not "the task failed".
_LOST = {"BrokenProcessPool", "BrokenExecutor", "KilledWorker", "CommClosedError", "FutureCancelledError"}


@dataclass
class Outcome:
    """What a run of tasks produced."""

    rows: dict = field(default_factory=dict)      # task key -> result rows
    seconds: dict = field(default_factory=dict)   # task key -> compute seconds
    failures: list = field(default_factory=list)  # (task, reason)
    reused: int = 0                               # tasks found done in the store
    stopped: str = ""                             # "time budget" / "interrupted" when stopped early


def _worker_init() -> None:  # pragma: no cover - runs in the worker processes
    # Ctrl-C goes to the whole process group: the driver handles it and stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _lost(err: BaseException) -> bool:
    return any(c.__name__ in _LOST for c in type(err).__mro__) or isinstance(err, cf.process.BrokenProcessPool)


def _reason(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


class _ProcessPool:
    """A spawn-context process pool that can be rebuilt after a worker dies."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool = self._new()

    def _new(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                      initializer=_worker_init)

    def submit(self, *args):
        return self.pool.submit(*args)

    def rebuild(self) -> None:
        self.stop()
        self.pool = self._new()

    def stop(self) -> None:
        """Cancel what has not started and end the workers now (their running tasks are lost, not stored)."""
        procs = list(getattr(self.pool, "_processes", {}) .values())
        self.pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(5)


def run_tasks(tasks: list[Task], store, options: dict, *, executor: Any = "process", workers: int | None = None,
              progress: Callable[[int, int, str], Any] | None = None, time_budget: float | None = None,
              retries: int = 2, inventories: dict | None = None) -> Outcome:
    """Run the tasks not yet in ``store``; see the module docstring. ``options`` go to ``hts.analyze``
    (``threads`` included: 1 per worker on a pool). ``inventories`` (path → the inventory planning opened)
    spare the serial executor a second reading of each model's header."""
    out = Outcome()
    done_keys = store.done(t.key for t in tasks)
    total_layers = sum(t.n_layers for t in tasks)
    layers_done = 0
    for t in tasks:
        if t.key in done_keys:
            out.rows[t.key] = store.rows(t.key)
            out.seconds[t.key] = store.seconds(t.key)
            out.reused += 1
            layers_done += t.n_layers
    todo = sorted((t for t in tasks if t.key not in done_keys), key=lambda t: -t.cost)
    deadline = None if time_budget is None else time.monotonic() + time_budget
    if progress is not None:
        progress(layers_done, total_layers, "")

    def finished(task: Task, rows: list, seconds: float) -> None:
        nonlocal layers_done
        store.put(task, rows, seconds)
        out.rows[task.key] = loads_rows(dumps_rows(rows))  # as a resumed run reads them back from the store
        out.seconds[task.key] = seconds
        layers_done += task.n_layers
        if progress is not None:
            progress(layers_done, total_layers, task.model)

    if not todo:
        return out
    if executor == "serial":
        def within(task: Task):  # layer-by-layer progress inside the model being analysed here
            if progress is None:
                return None
            return lambda done, total, name: progress(layers_done + min(done, task.n_layers), total_layers,
                                                      f"{task.model}: {name}")

        _run_serial(todo, options, finished, out, deadline, inventories or {}, within)
    else:
        _run_pool(todo, options, executor, workers, finished, out, deadline, retries)
    return out


def _run_serial(todo, options, finished, out: Outcome, deadline, inventories: dict, within) -> None:
    for task in todo:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            out.stopped = "time budget"
            return
        try:
            rows, seconds = run_task(inventories.get(task.path, task.path), task.layer_ids,
                                     {**options, "time_budget": remaining, "progress": within(task)})
        except KeyboardInterrupt:
            out.stopped = "interrupted"
            raise
        except Exception as err:  # noqa: BLE001 - one model's error must not end the study
            if type(err).__name__ == "Cancelled" and deadline is not None and time.monotonic() >= deadline:
                out.stopped = "time budget"
                return
            out.failures.append((task, _reason(err)))
            logger.warning("%s: %s", task.model, _reason(err))
            continue
        finished(task, rows, seconds)


def _run_pool(todo, options, executor, workers, finished, out: Outcome, deadline, retries) -> None:
    own = executor in (None, "process")
    if own:
        n = max(1, min(workers or (os.cpu_count() or 1), len(todo)))
        pool: Any = _ProcessPool(n)
        options = {**options, "threads": 1}
    elif isinstance(executor, str):
        raise ValueError(f"executor must be one of {EXECUTORS} or a concurrent.futures.Executor, got {executor!r}")
    else:
        pool = executor
    attempts = {t.key: 0 for t in todo}
    pending: dict = {}

    def submit(tasks: list) -> None:
        """Submit tasks; a local pool that broke meanwhile (a worker died, even while it was being
        started) is rebuilt and everything pending goes again."""
        for _ in range(retries + 2):
            try:
                for task in tasks:
                    pending[pool.submit(run_task, task.path, task.layer_ids, options)] = task
                    attempts[task.key] += 1
                return
            except (cf.process.BrokenProcessPool, OSError) as err:
                if not own:
                    raise
                logger.warning("process pool broken (%s); starting a new one", _reason(err))
                tasks = list(dict.fromkeys([*pending.values(), *tasks]))
                pending.clear()
                pool.rebuild()
        raise RuntimeError(f"the process pool broke {retries + 2} times while starting its workers")

    try:
        submit(todo)
        while pending:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                ready = next(cf.as_completed(list(pending), timeout=remaining))
            except cf.TimeoutError:
                out.stopped = "time budget"
                break
            task = pending.pop(ready)
            try:
                rows, seconds = ready.result()
            except Exception as err:  # noqa: BLE001
                if _lost(err) and attempts[task.key] <= retries:
                    logger.warning("%s: worker lost (%s); submitting again", task.model, _reason(err))
                    if own and isinstance(err, cf.process.BrokenProcessPool):
                        # every pending future of a broken pool fails: rebuild it and resubmit them all
                        again = [task, *pending.values()]
                        pending.clear()
                        pool.rebuild()
                        submit(again)
                    else:
                        submit([task])
                    continue
                out.failures.append((task, _reason(err)))
                logger.warning("%s: %s", task.model, _reason(err))
                continue
            finished(task, rows, seconds)
    except KeyboardInterrupt:
        out.stopped = "interrupted"
        raise
    finally:
        if pending:
            for f in pending:
                f.cancel()
        if own:
            pool.stop() if pending or out.stopped else pool.pool.shutdown(wait=True)
