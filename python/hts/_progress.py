"""Progress for the command line and ``hts.analyze(progress=True)``: a tqdm bar on a terminal or in a Jupyter
kernel (``tqdm.auto``: a widget where ipywidgets is installed), periodic log lines otherwise."""

from __future__ import annotations

import sys
import time

__all__ = ["make_progress"]

#: Seconds between two progress lines when stderr is not a terminal.
LOG_EVERY = 10.0


class _Lines:
    """``hts: 12/150 layers (8%), 3.2 s elapsed`` at most every LOG_EVERY seconds, and at the end."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.start = self.last = time.monotonic()

    def __call__(self, done: int, total: int, name: str) -> None:
        now = time.monotonic()
        if done == total or now - self.last >= LOG_EVERY:
            self.last = now
            pct = 100 * done // max(total, 1)
            print(f"hts: {done}/{total} layers ({pct}%), {now - self.start:.1f} s elapsed, last {name}",
                  file=self.stream, flush=True)

    def close(self) -> None:
        pass


class _Bar:
    def __init__(self, tqdm, stream) -> None:
        self.bar = tqdm(total=0, unit="layer", file=stream, leave=False, dynamic_ncols=True)
        self.tqdm = tqdm

    def __call__(self, done: int, total: int, name: str) -> None:
        if self.bar.total != total:
            self.bar.total = total
        self.bar.set_postfix_str(name[-40:], refresh=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def make_progress(enabled: bool, stream=None):
    """A ``progress(done, total, name)`` callable with ``close()``, or None when disabled."""
    if not enabled:
        return None
    stream = stream or sys.stderr
    if stream.isatty():
        try:
            from tqdm import tqdm
        except ImportError:
            return _Lines(stream)
        return _Bar(tqdm, stream)
    if _in_jupyter_kernel() and stream is sys.stderr:
        try:
            from tqdm.auto import tqdm as auto_tqdm
        except ImportError:
            return _Lines(stream)
        return _Bar(auto_tqdm, stream)
    return _Lines(stream)


def _in_jupyter_kernel() -> bool:
    """True inside a Jupyter (IPython) kernel, whose stderr is no terminal but shows a tqdm bar."""
    shell = sys.modules.get("IPython")
    get = getattr(shell, "get_ipython", None)
    instance = get() if callable(get) else None
    return instance is not None and "IPKernelApp" in getattr(instance, "config", {})
