"""When an analysis must stop early: a cancel event, a progress callback that said no, or a time budget.

One ``StopCheck`` per ``analyze`` call (no shared state). It is consulted at layer and kernel-batch boundaries,
from the calling thread and from hts's worker threads; once it has said "stop" it keeps saying so, with the
first reason, even if the cancel object later reads as clear again.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from typing import Any, Iterator

from .errors import Cancelled

__all__ = ["StopCheck"]

#: Seconds between polls of the cancel event and the clock while a kernel call runs (``StopCheck.native``).
POLL_SECONDS = 0.01


class StopCheck:
    """Decides whether work may go on.

    Parameters
    ----------
    cancel
        None, or anything with an ``is_set()`` method (a ``threading.Event``); work stops once it returns true.
        It may be called from hts's worker threads.
    time_budget
        None, or the seconds the analysis may take from the creation of this object (a positive number).
    """

    def __init__(self, cancel: Any = None, time_budget: float | None = None) -> None:
        if cancel is not None and not callable(getattr(cancel, "is_set", None)):
            raise TypeError(f"cancel must have an is_set() method (a threading.Event), got {type(cancel).__name__}")
        if time_budget is not None:
            if isinstance(time_budget, bool) or not isinstance(time_budget, (int, float)) \
                    or not math.isfinite(time_budget) or time_budget <= 0:
                raise ValueError(f"time_budget must be a positive number of seconds, got {time_budget!r}")
        self._cancel = cancel
        self._budget = time_budget
        self._start = time.monotonic()
        self._lock = threading.Lock()
        self._reason = ""

    def decline(self) -> None:
        """Record that the progress callback returned False."""
        self._latch("the progress callback returned False")

    def reason(self) -> str:
        """Why work must stop ("" while it may go on)."""
        if not self._reason:
            if self._cancel is not None and self._cancel.is_set():
                self._latch("the cancel event was set")
            elif self._budget is not None and time.monotonic() - self._start > self._budget:
                self._latch(f"the time budget of {self._budget:g} s ran out")
        return self._reason

    def check(self, done: int, total: int) -> None:
        """Raise ``Cancelled`` if work must stop, saying how many of the ``total`` layers were done."""
        why = self.reason()
        if why:
            elapsed = time.monotonic() - self._start
            raise Cancelled(f"analysis stopped after {done} of {total} layers ({elapsed:.2f} s): {why}",
                            done=done, total=total)

    @contextlib.contextmanager
    def native(self) -> Iterator[Any]:
        """A ``hts._core.StopFlag`` for the kernel calls made inside the ``with`` block (None when there is
        nothing to stop on). The kernel cannot call Python, so a small thread polls ``reason()`` every
        ``POLL_SECONDS`` while the block runs and sets the flag once it says stop; the kernel then gives up at
        its next safe point (``hts._core.Stopped``)."""
        if self._cancel is None and self._budget is None:
            yield None
            return
        from ._native import _core

        flag = _core.StopFlag()
        done = threading.Event()

        def watch() -> None:
            while not done.wait(POLL_SECONDS):
                if self.reason():
                    flag.set()
                    return

        if self.reason():
            flag.set()
        watcher = threading.Thread(target=watch, name="hts-stop-watch", daemon=True)
        watcher.start()
        try:
            yield flag
        finally:
            done.set()
            watcher.join()

    def _latch(self, why: str) -> None:
        with self._lock:
            if not self._reason:
                self._reason = why
