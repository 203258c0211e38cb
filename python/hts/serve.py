"""The metrics sidecar behind ``hts serve``: watch checkpoint files, analyse them when they change, serve
``/metrics`` (Prometheus text), ``/analysis.json`` and ``/healthz`` over HTTP (stdlib ``ThreadingHTTPServer``).

Files are only read. A model is re-analysed only when its signature changes: for each file (a folder is
walked without following symlinks), its size, mtime and a SHA-256 of its first and last 64 KiB. A file that
cannot be read or analysed, or that changes while it is being analysed (a half-written checkpoint), sets the
model's error gauge and logs a warning; the last good result keeps being served. Pages are rendered once per
change, so a request costs a dictionary look-up. See docs/serving.md.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Sequence

from . import prometheus
from .analysis import analyze
from .errors import Cancelled, HTSError

__all__ = ["MetricsSidecar", "ModelState", "file_signature"]

logger = logging.getLogger(__name__)

#: Bytes hashed at each end of every file for its signature.
HASH_BYTES = 64 * 1024
#: A folder with more files than this is refused (a signature must stay cheap).
MAX_FILES = 10_000


def file_signature(path: str) -> tuple:
    """(relative name, size, mtime_ns, SHA-256 of the first and last 64 KiB) of the file, or of every file
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
                    digest.hexdigest()))
    return tuple(out)


def _raise(err: OSError) -> None:
    raise err


@dataclass
class ModelState:
    """What the sidecar knows about one watched model (replaced, never mutated, once published)."""

    name: str
    path: str
    signature: tuple | None = None  # of the last good analysis
    summary: dict | None = None
    counts: dict | None = None
    layers: list = field(default_factory=list)
    analysis_json: dict | None = None
    duration: float = float("nan")
    analysed_at: float = float("nan")
    error: str = ""  # of the last attempt ("" when it succeeded)
    failed_signature: tuple | None = None  # the files as they were when the last attempt failed
    errors_total: int = 0
    analyses_total: int = 0


class MetricsSidecar:
    """Watches ``paths`` and serves their metrics; thread-safe; start with ``start()``, stop with ``close()``.

    Parameters
    ----------
    paths : model files or folders (anything ``hts.analyze`` reads)
    host, port : where to listen; loopback by default, port 0 picks a free port (see ``address``)
    interval : seconds between checks of the files' signatures
    per_layer : add per-layer series to /metrics (one per analysed layer: mind the cardinality)
    threads, time_budget : passed to ``hts.analyze`` for each analysis
    analyze_options : further keyword arguments of ``hts.analyze``
    """

    def __init__(self, paths: Sequence[str], *, host: str = "127.0.0.1", port: int = 9108, interval: float = 60.0,
                 per_layer: bool = False, threads: int | None = None, time_budget: float | None = None,
                 analyze_options: dict | None = None) -> None:
        if not paths:
            raise ValueError("no model paths to watch")
        if not interval > 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval!r}")
        self.interval = float(interval)
        self.per_layer = per_layer
        self._analyze_options = dict(analyze_options or {}, threads=threads, time_budget=time_budget)
        self._states = [ModelState(name, os.path.abspath(p)) for name, p in _names(paths)]
        self._lock = threading.Lock()  # guards _states and _pages (held briefly)
        self._refreshing = threading.Lock()  # one refresh at a time
        self._checked_at: float | None = None  # monotonic time the last refresh finished
        self._stop = threading.Event()
        self._pages: dict[str, tuple[bytes, str]] = {}
        self._publish()
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._threads: list[threading.Thread] = []
        if not _is_loopback(host):
            logger.warning("hts serve listens on %s, reachable from other machines", host)

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) actually bound."""
        return self._server.server_address[:2]

    # -- watching ------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Check every model once and re-analyse those whose files changed (runs in the calling thread; one
        refresh at a time)."""
        with self._refreshing:
            for k, state in enumerate(list(self._states)):
                if self._stop.is_set():
                    return
                new = self._refresh_one(state)
                if new is not state:
                    with self._lock:
                        self._states[k] = new
                    self._publish()
            self._checked_at = time.monotonic()

    def _refresh_one(self, state: ModelState) -> ModelState:
        before = None
        try:
            before = file_signature(state.path)
            if before == (state.failed_signature if state.error else state.signature):
                return state  # unchanged since the last attempt
            t0 = time.perf_counter()
            result = analyze(state.path, cancel=self._stop, **self._analyze_options)
            duration = time.perf_counter() - t0
            after = file_signature(state.path)
            if after != before:
                before = None  # retried at the next check even if the files stay as they are now
                raise OSError("the files changed while they were analysed (still being written?)")
        except Cancelled as err:
            if self._stop.is_set():  # shutting down
                return state
            return self._failed(state, err, before)
        except (HTSError, OSError, ValueError, TypeError, RuntimeError, MemoryError) as err:
            return self._failed(state, err, before)
        logger.info("model %r analysed in %.2f s", state.name, duration)
        return ModelState(name=state.name, path=state.path, signature=before, summary=result.summary,
                          counts=result.counts, layers=result.rows, analysis_json=result.to_dict(),
                          duration=duration, analysed_at=time.time(), error="", errors_total=state.errors_total,
                          analyses_total=state.analyses_total + 1)

    @staticmethod
    def _failed(state: ModelState, err: BaseException, signature: tuple | None) -> ModelState:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        if message != state.error:
            logger.warning("model %r: %s (serving the last good result)", state.name, message)
        return ModelState(**{**state.__dict__, "error": message, "errors_total": state.errors_total + 1,
                             "failed_signature": signature})

    def _publish(self) -> None:
        """Render the pages from the current states (requests then only copy bytes)."""
        with self._lock:
            states = list(self._states)
        metrics = prometheus.render(states, per_layer=self.per_layer).encode()
        body = {s.name: {"path": s.path, "error": s.error or None, "analysis": s.analysis_json} for s in states}
        pages = {
            "/metrics": (metrics, prometheus.CONTENT_TYPE),
            "/analysis.json": (json.dumps(body, allow_nan=False).encode(), "application/json"),
        }
        with self._lock:
            self._pages = pages

    def page(self, path: str) -> tuple[bytes, str] | None:
        with self._lock:
            return self._pages.get(path)

    def states(self) -> list[ModelState]:
        with self._lock:
            return list(self._states)

    def _watch(self) -> None:
        """Refresh whenever ``interval`` seconds have passed since the last check, whoever made it (a refresh
        by hand, e.g. before ``start()``, is not repeated at once)."""
        while not self._stop.is_set():
            last = self._checked_at
            if last is not None and time.monotonic() - last < self.interval:
                self._stop.wait(self.interval - (time.monotonic() - last))
                continue
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - the watcher must outlive any surprise; it is logged
                logger.exception("hts serve: unexpected error while refreshing")
                self._checked_at = time.monotonic()

    # -- life cycle ----------------------------------------------------------------------------------------
    def start(self) -> "MetricsSidecar":
        """Start the watcher and the HTTP server in background threads; returns self."""
        for target, name in ((self._watch, "hts-serve-watch"), (self._server.serve_forever, "hts-serve-http")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def close(self) -> None:
        """Stop serving and watching (an analysis in progress is cancelled at its next layer)."""
        self._stop.set()
        if self._threads:  # shutdown() waits for serve_forever(), which only runs once started
            self._server.shutdown()
        self._server.server_close()
        for t in self._threads:
            t.join(timeout=30)

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


def _handler_for(sidecar: MetricsSidecar):
    class Handler(BaseHTTPRequestHandler):
        server_version = "hts-serve"
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out at once (no 40 ms delayed-ACK stall)

        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self._answer(send_body=True)

        def do_HEAD(self) -> None:  # noqa: N802
            self._answer(send_body=False)

        def _answer(self, send_body: bool) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                page = (b"ok\n", "text/plain; charset=utf-8")
            else:
                page = sidecar.page(path)
            status = 200
            if page is None:
                status, page = 404, (b"not found: try /metrics, /analysis.json or /healthz\n", "text/plain")
            body, content_type = page
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - the stdlib's signature
            logger.debug("%s %s", self.address_string(), format % args)

    return Handler
