"""The metrics sidecar behind ``hts serve``: watch checkpoint files, analyse them when they change, serve
``/metrics`` (Prometheus text), ``/analysis.json``, ``/healthz`` (liveness) and ``/readyz`` (readiness) over
HTTP (``hts._http``: asyncio, timeouts, a connection cap).

Files are only read. A model is re-analysed only when its signature changes: for each file (a folder is
walked without following symlinks), its size, mtime, ctime, inode and a SHA-256 of its first and last 64 KiB.
A result is published only when the files were stable for the whole read: modified at least ``settle``
seconds before the analysis started (a writer that pauses mid-file looks finished otherwise), the same
signature before and after, and, for zip checkpoints, every member passing its CRC-32 check after the read (a
file caught half-rewritten in place fails it). Otherwise the model is "unstable": nothing is published, the
``hts_model_unstable`` gauge is 1 and it is tried again. A file that cannot be read or analysed sets the
model's error gauge and logs a warning; the last good result keeps being served (``hts_model_stale`` 1).
Pages are rendered once per change, one model at a time (a model whose result cannot be rendered shows in
its own error gauge and does not stop the others), so a request costs a dictionary look-up. See
docs/serving.md.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import math
import os
import threading
import time
import zipfile
from dataclasses import dataclass, field, replace
from typing import Sequence

from . import prometheus
from ._http import PageServer
from .analysis import analyze
from .errors import Cancelled, HTSError

__all__ = ["MetricsSidecar", "ModelState", "file_signature"]

logger = logging.getLogger(__name__)

#: Bytes hashed at each end of every file for its signature.
HASH_BYTES = 64 * 1024
#: A folder with more files than this is refused (a signature must stay cheap).
MAX_FILES = 10_000


def file_signature(path: str) -> tuple:
    """(relative name, size, mtime_ns, ctime_ns, inode, SHA-256 of the first and last 64 KiB) of the file, or
    of every file
    under the folder (symlinked folders are not followed, so symlink loops cannot recurse). OSError if
    anything cannot be read."""
    if os.path.isdir(path):
        names = []
        for root, dirs, files in os.walk(path, followlinks=False, onerror=_raise):
            dirs.sort()
            names += [os.path.join(root, f) for f in sorted(files)]
            if len(names) > MAX_FILES:
                raise OSError(f"{path}: more than {MAX_FILES} files")
    else:
        names = [path]
    out = []
    for name in names:
        with open(name, "rb") as f:
            st = os.fstat(f.fileno())
            digest = hashlib.sha256(f.read(HASH_BYTES))
            if st.st_size > HASH_BYTES:
                f.seek(max(HASH_BYTES, st.st_size - HASH_BYTES))
                digest.update(f.read(HASH_BYTES))
        out.append((os.path.relpath(name, path) if name != path else "", st.st_size, st.st_mtime_ns,
                    st.st_ctime_ns, st.st_ino, digest.hexdigest()))
    return tuple(out)


def _raise(err: OSError) -> None:
    raise err


def newest_change_ns(signature: tuple) -> int:
    """The latest mtime/ctime (ns) over the files of a signature."""
    return max((max(entry[2], entry[3]) for entry in signature), default=0)


def zip_members_intact(path: str) -> str:
    """"" when every zip file of the model (a checkpoint in torch's zip format) passes its CRC-32 checks, else
    what failed; non-zip files are not checked (they carry no checksums)."""
    names = [path]
    if os.path.isdir(path):
        names = [os.path.join(root, f) for root, _, files in os.walk(path, followlinks=False) for f in files]
    for name in names:
        try:
            if not zipfile.is_zipfile(name):
                continue
            with zipfile.ZipFile(name) as archive:
                bad = archive.testzip()
        except (OSError, zipfile.BadZipFile, RuntimeError, ValueError, EOFError) as err:
            return f"{name}: zip unreadable after the analysis ({err})"
        except Exception as err:  # noqa: BLE001 - zlib.error and friends: any failure means "not intact"
            return f"{name}: zip unreadable after the analysis ({type(err).__name__}: {err})"
        if bad is not None:
            return f"{name}: member {bad!r} fails its CRC check (the file was being rewritten)"
    return ""


def _json_bytes(result) -> bytes:
    """``json.dumps(result.to_dict(), allow_nan=False)`` as UTF-8, made one row at a time
    (``Analysis.json_parts``): the rows of a flood of skipped tensors are never all held as dicts."""
    out = bytearray()
    for part in result.json_parts():
        out += part.encode("utf-8")
    return out


@dataclass
class ModelState:
    """What the sidecar knows about one watched model (replaced, never mutated, once published)."""

    name: str
    path: str
    signature: tuple | None = None  # of the last good analysis
    summary: dict | None = None
    counts: dict | None = None
    layers: list = field(default_factory=list)  # the analysed and failed rows (what --per-layer shows)
    # json.dumps(Analysis.to_dict(), allow_nan=False) as UTF-8; once published, a view into the /analysis.json
    # page that holds it (so the text is held once)
    analysis_json: bytes | bytearray | memoryview | None = None
    duration: float = float("nan")
    analysed_at: float = float("nan")
    error: str = ""  # of the last attempt ("" when it succeeded)
    failed_signature: tuple | None = None  # the files as they were when the last attempt failed
    errors_total: int = 0
    analyses_total: int = 0
    unstable: bool = False  # the files were changing at the last check: nothing published from them
    render_error: str = ""  # the result could not be rendered (it is then not served)

    @property
    def ready(self) -> bool:
        """A good result is served and it is current: the last attempt neither failed nor met unstable files."""
        return self.summary is not None and not self.error and not self.unstable

    @property
    def stale(self) -> bool:
        """A good result is served but the files on disk differ from it (the last attempt failed or they are
        still changing)."""
        return self.summary is not None and bool(self.error or self.unstable)


class MetricsSidecar:
    """Watches ``paths`` and serves their metrics; thread-safe; start with ``start()``, stop with ``close()``.

    Parameters
    ----------
    paths : model files or folders (anything ``hts.analyze`` reads)
    host, port : where to listen; loopback by default, port 0 picks a free port (see ``address``); a port
        that cannot be bound raises ``OSError`` naming host:port
    interval : seconds between checks of the files' signatures (finite, > 0)
    per_layer : add per-layer series to /metrics (one per analysed layer: mind the cardinality)
    threads, time_budget : passed to ``hts.analyze`` for each analysis
    analyze_options : further keyword arguments of ``hts.analyze``
    settle : seconds the files must have been left unmodified before they are analysed (default 2)
    """

    def __init__(self, paths: Sequence[str], *, host: str = "127.0.0.1", port: int = 9108, interval: float = 60.0,
                 per_layer: bool = False, threads: int | None = None, time_budget: float | None = None,
                 analyze_options: dict | None = None, settle: float = 2.0) -> None:
        if not paths:
            raise ValueError("no model paths to watch")
        if not (isinstance(interval, (int, float)) and math.isfinite(interval) and interval > 0):
            raise ValueError(f"interval must be a finite number of seconds > 0, got {interval!r}")
        if not (isinstance(settle, (int, float)) and math.isfinite(settle) and settle >= 0):
            raise ValueError(f"settle must be a finite number of seconds >= 0, got {settle!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an int in 0..65535, got {port!r}")
        self.interval = float(interval)
        self.settle = float(settle)
        self.per_layer = per_layer
        self._analyze_options = dict(analyze_options or {}, threads=threads, time_budget=time_budget)
        self._states = [ModelState(name, os.path.abspath(p)) for name, p in _names(paths)]
        self._lock = threading.Lock()  # guards _states and _pages (held briefly)
        self._refreshing = threading.Lock()  # one refresh at a time
        self._checked_at: float | None = None  # monotonic time the last refresh finished
        self._retry_soon = False  # a model was unstable: check again after ``settle`` rather than ``interval``
        self._stop = threading.Event()
        self._pages: dict[str, tuple[bytes, str]] = {}
        self._fragments: dict[str, tuple] = {}  # model name -> (state, metrics lines, json) rendered
        self._publish()
        self._server = PageServer(host, port, self._answer)
        self._threads: list[threading.Thread] = []
        self._started = False
        if not _is_loopback(host):
            logger.warning("hts serve listens on %s, reachable from other machines", host)

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) actually bound."""
        return self._server.address

    @property
    def ready(self) -> bool:
        """Every model has a current good result (what /readyz answers 200 to)."""
        return all(s.ready for s in self.states())

    # -- watching ------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Check every model once and re-analyse those whose files changed (runs in the calling thread; one
        refresh at a time)."""
        with self._refreshing:
            retry = False
            for k, state in enumerate(list(self._states)):
                if self._stop.is_set():
                    return
                new = self._refresh_one(state)
                retry = retry or new.unstable
                if new is not state:
                    with self._lock:
                        self._states[k] = new
                    self._publish()
            self._retry_soon = retry
            self._checked_at = time.monotonic()

    def _refresh_one(self, state: ModelState) -> ModelState:
        before = None
        try:
            before = file_signature(state.path)
            if before == (state.failed_signature if state.error else state.signature) and not state.unstable:
                return state  # unchanged since the last attempt
            age = time.time() - newest_change_ns(before) / 1e9
            if age < self.settle:
                return self._unstable(state, f"modified {max(age, 0.0):.1f} s ago (< settle {self.settle:g} s)")
            t0 = time.perf_counter()
            result = analyze(state.path, cancel=self._stop, **self._analyze_options)
            duration = time.perf_counter() - t0
            after = file_signature(state.path)
            if after != before:
                return self._unstable(state, "the files changed while they were analysed")
            broken = zip_members_intact(state.path)
            if broken:  # caught mid-rewrite: nothing published; retried when the files change again
                raise OSError(broken)
            if result.unreadable:
                first = result.unreadable[0]
                raise OSError(f"{len(result.unreadable)} layer(s) could not be read (first: {first['key']}: "
                              f"{first['reason']})")
        except Cancelled as err:
            if self._stop.is_set():  # shutting down
                return state
            return self._failed(state, err, before)
        except FileNotFoundError as err:
            return self._failed(state, OSError(f"waiting for {err.filename or state.path} to appear (not found)"),
                                before)
        except (HTSError, OSError, ValueError, TypeError, RuntimeError, MemoryError) as err:
            return self._failed(state, err, before)
        logger.info("model %r analysed in %.2f s", state.name, duration)
        return ModelState(name=state.name, path=state.path, signature=before, summary=result.summary,
                          counts=result.counts, layers=result.analysed, analysis_json=_json_bytes(result),
                          duration=duration, analysed_at=time.time(), error="", errors_total=state.errors_total,
                          analyses_total=state.analyses_total + 1)

    @staticmethod
    def _unstable(state: ModelState, why: str) -> ModelState:
        if not state.unstable:
            logger.info("model %r: files not stable (%s); will check again", state.name, why)
        return replace(state, unstable=True)

    @staticmethod
    def _failed(state: ModelState, err: BaseException, signature: tuple | None) -> ModelState:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        if message != state.error:
            keeping = "serving the last good result" if state.summary is not None else "no result yet"
            logger.warning("model %r: %s (%s; will retry)", state.name, message, keeping)
        return replace(state, error=message, errors_total=state.errors_total + 1, failed_signature=signature,
                       unstable=False)

    # -- rendering -----------------------------------------------------------------------------------------
    def _render_one(self, state: ModelState) -> tuple[ModelState, list]:
        """The model's /analysis.json entry (in pieces), checked by rendering it and its /metrics lines once; a
        result that cannot be rendered is replaced by an error state (its own gauge says so, the others are
        unaffected)."""
        try:
            prometheus.render([state], per_layer=self.per_layer).encode("utf-8")
            head = json.dumps({"path": state.path, "error": state.error or None, "ready": state.ready,
                               "stale": state.stale, "analysis": None}, allow_nan=False).encode("utf-8")
            if state.analysis_json is None:
                return state, [head]
            return state, [head[:-len(b"null}")], state.analysis_json, b"}"]  # the result's text, rendered once
        except Exception as err:  # noqa: BLE001 - any rendering failure is confined to this model
            logger.exception("model %r: its result cannot be rendered", state.name)
            state = replace(state, summary=None, counts=None, layers=[], analysis_json=None,
                            render_error=f"cannot render the result: {type(err).__name__}: {err}"[:500])
            entry = json.dumps({"path": state.path, "error": state.render_error, "ready": False, "stale": False,
                                "analysis": None}, ensure_ascii=True).encode("ascii", "backslashreplace")
            return state, [entry]

    def _publish(self) -> None:
        """Render the pages from the current states (requests then only copy bytes)."""
        with self._lock:
            states = list(self._states)
        rendered = [self._render_one(s) for s in states]
        shown = [state for state, _ in rendered]
        metrics = prometheus.render(shown, per_layer=self.per_layer).encode("utf-8")
        pieces, spans, at = [b"{"], {}, 1  # spans: model -> where its result's JSON lies in the page
        for n, (state, entry) in enumerate(rendered):
            for piece in ([b","] if n else []) + [json.dumps(state.name).encode("ascii") + b":"] + entry:
                if piece is states[n].analysis_json:
                    spans[n] = (at, len(piece))
                pieces.append(piece)
                at += len(piece)
        body = b"".join(pieces + [b"}"])
        del pieces, rendered, shown
        pages = {
            "/metrics": (metrics, prometheus.CONTENT_TYPE),
            "/analysis.json": (body, "application/json"),
        }
        view = memoryview(body)
        with self._lock:
            self._pages = pages
            for n, (start, size) in spans.items():  # each result's text is now held once, in the page
                if self._states[n] is states[n]:
                    self._states[n] = replace(states[n], analysis_json=view[start:start + size])

    def page(self, path: str) -> tuple[bytes, str] | None:
        with self._lock:
            return self._pages.get(path)

    def _answer(self, path: str) -> tuple[int, bytes, str]:
        """The HTTP answer for ``path`` (status, body, content type)."""
        text = "text/plain; charset=utf-8"
        if path == "/healthz":
            return 200, b"ok\n", text
        if path == "/readyz":
            waiting = [s for s in self.states() if not s.ready]
            if not waiting:
                return 200, b"ready\n", text
            lines = [f"not ready: {prometheus.safe_text(s.name)}: "
                     f"{prometheus.safe_text(s.render_error or s.error or ('files still changing' if s.unstable else 'no result yet'))}"
                     for s in waiting]
            return 503, ("\n".join(lines) + "\n").encode("utf-8"), text
        page = self.page(path)
        if page is None:
            return 404, b"not found: try /metrics, /analysis.json, /healthz or /readyz\n", text
        return 200, page[0], page[1]

    def states(self) -> list[ModelState]:
        with self._lock:
            return list(self._states)

    def _watch(self) -> None:
        """Refresh whenever ``interval`` seconds have passed since the last check, whoever made it (a refresh
        by hand, e.g. before ``start()``, is not repeated at once); after unstable files, ``settle`` seconds."""
        while not self._stop.is_set():
            last = self._checked_at
            wait = min(self.interval, max(self.settle, 0.5)) if self._retry_soon else self.interval
            if last is not None and time.monotonic() - last < wait:
                self._stop.wait(wait - (time.monotonic() - last))
                continue
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - the watcher must outlive any surprise; it is logged
                logger.exception("hts serve: unexpected error while refreshing")
                self._checked_at = time.monotonic()

    # -- life cycle ----------------------------------------------------------------------------------------
    def start(self) -> "MetricsSidecar":
        """Start the watcher and the HTTP server in background threads; returns self."""
        self._server.start()
        t = threading.Thread(target=self._watch, name="hts-serve-watch", daemon=True)
        t.start()
        self._threads.append(t)
        self._started = True
        return self

    def close(self, timeout: float = 30.0) -> bool:
        """Stop in order: stop accepting connections, cancel an analysis in progress (at its next safe point),
        join the watcher. Returns True when every thread has ended within ``timeout`` seconds (False: the
        watcher is still inside a native call; the caller should then leave with ``os._exit``)."""
        self._stop.set()
        self._server.close()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def __enter__(self) -> "MetricsSidecar":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def _names(paths: Sequence[str]) -> list[tuple[str, str]]:
    """A label per path: its base name, or the whole path where base names collide."""
    bases = [os.path.basename(os.path.normpath(p)) or p for p in paths]
    return [(b if bases.count(b) == 1 else os.path.abspath(p), p) for b, p in zip(bases, paths)]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
