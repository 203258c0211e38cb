"""A small HTTP/1.1 server for pre-rendered pages (the sidecar's /metrics, /analysis.json, /healthz, /readyz).

Built on asyncio from the standard library, in one background thread, so that an idle or slow connection costs
a few kB and no thread: ``ThreadingHTTPServer`` gives every connection a thread, has no timeouts and a listen
backlog of 5 (300 idle connections held 300 threads; at the fd limit it spun at 100 % CPU).

Limits (all per connection unless said): a request line and headers of at most ``MAX_HEADER_BYTES``, sent within
``header_timeout`` seconds; ``idle_timeout`` seconds between keep-alive requests; a response must drain within
``write_timeout`` seconds (a client that does not read is dropped); at most ``max_connections`` open at once (the
next are closed at once), which stays below the process's file-descriptor limit; a listen backlog of
``backlog``. When ``accept`` fails because descriptors run out, asyncio pauses accepting for a second instead of
spinning. Only GET and HEAD are served; a request with a body is refused (413). Answers are whatever
``get_page(path)`` returns — the caller keeps them rendered, so a request never computes anything.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
import threading
from typing import Callable

__all__ = ["PageServer"]

logger = logging.getLogger("hts")

MAX_HEADER_BYTES = 16 * 1024
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large",
            431: "Request Header Fields Too Large", 503: "Service Unavailable"}

#: get_page(path) -> (status, body, content type)
PageSource = Callable[[str], "tuple[int, bytes, str]"]


def _default_max_connections() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1024
    return max(8, min(1024, soft - 64))  # leave descriptors for model files, logs and the interpreter


class PageServer:
    """Serves ``get_page`` on (host, port) from a background thread; bind errors raise at construction."""

    def __init__(self, host: str, port: int, get_page: PageSource, *, idle_timeout: float = 15.0,
                 header_timeout: float = 10.0, write_timeout: float = 10.0, max_connections: int | None = None,
                 backlog: int = 1024, name: str = "hts-http") -> None:
        self._get_page = get_page
        self.idle_timeout, self.header_timeout, self.write_timeout = idle_timeout, header_timeout, write_timeout
        self.max_connections = max_connections or _default_max_connections()
        self._open = 0
        self.refused_total = 0
        try:
            self._socket = socket.create_server((host, port), backlog=backlog,
                                                family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        except OSError as err:
            raise OSError(err.errno, f"cannot listen on {host}:{port}: {err.strerror or err}") from None
        except (socket.gaierror, UnicodeError, ValueError, OverflowError) as err:
            raise OSError(f"cannot listen on {host}:{port}: {err}") from None
        self._socket.setblocking(False)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = threading.Event()
        self._server: asyncio.base_events.Server | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self._socket.getsockname()[:2]

    @property
    def open_connections(self) -> int:
        return self._open

    def start(self) -> "PageServer":
        self._thread.start()
        self._started.wait(10)
        return self

    def close(self) -> None:
        """Stop accepting, close every connection and the loop; returns when the thread has ended."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        if not self._loop.is_closed() and not self._thread.is_alive():
            self._loop.close()
        self._socket.close()

    # -- the loop thread -----------------------------------------------------------------------------------
    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._connection, sock=self._socket, limit=MAX_HEADER_BYTES))
            self._started.set()
            self._loop.run_forever()
        finally:
            self._started.set()
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks(self._loop):
                task.cancel()
            try:
                self._loop.run_until_complete(asyncio.sleep(0))
            except RuntimeError:
                pass

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._open >= self.max_connections:
            self.refused_total += 1
            writer.close()
            return
        self._open += 1
        try:
            first = True
            while True:
                keep_alive = await self._one_request(reader, writer, self.header_timeout if first
                                                     else self.idle_timeout)
                first = False
                if not keep_alive:
                    break
        except (ConnectionError, asyncio.TimeoutError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            self._open -= 1
            writer.close()

    async def _one_request(self, reader, writer, wait_first: float) -> bool:
        """Read and answer one request; True to keep the connection open."""
        try:
            line = await asyncio.wait_for(reader.readline(), wait_first)
        except (ValueError, asyncio.LimitOverrunError):  # a line longer than the limit
            await self._send(writer, 431, b"request line too long\n", "text/plain", False, True)
            return False
        if not line:
            return False
        headers, size = {}, len(line)
        while True:
            try:
                raw = await asyncio.wait_for(reader.readline(), self.header_timeout)
            except (ValueError, asyncio.LimitOverrunError):
                raw = b"x" * (MAX_HEADER_BYTES + 1)
            size += len(raw)
            if size > MAX_HEADER_BYTES:
                await self._send(writer, 431, b"headers too large\n", "text/plain", False, True)
                return False
            if raw in (b"\r\n", b"\n", b""):
                break
            name, sep, value = raw.decode("latin-1").partition(":")
            if not sep:
                await self._send(writer, 400, b"malformed header\n", "text/plain", False, True)
                return False
            headers[name.strip().lower()] = value.strip()
        parts = line.decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            await self._send(writer, 400, b"malformed request line\n", "text/plain", False, True)
            return False
        method, target, version = parts
        connection = headers.get("connection", "").lower()
        keep = (version == "HTTP/1.1" and connection != "close") or (version == "HTTP/1.0" and
                                                                     connection == "keep-alive")
        if headers.get("transfer-encoding") or headers.get("content-length", "0") not in ("", "0"):
            await self._send(writer, 413, b"requests with a body are not accepted\n", "text/plain", False, True)
            return False
        if method not in ("GET", "HEAD"):
            await self._send(writer, 405, b"only GET and HEAD\n", "text/plain", False, True, allow=True)
            return False
        try:
            status, body, content_type = self._get_page(target.split("?", 1)[0])
        except Exception:  # noqa: BLE001 - a page source bug must not kill the server; it is logged
            logger.exception("hts serve: cannot answer %r", target[:200])
            status, body, content_type = 503, b"internal error, see the log\n", "text/plain"
        await self._send(writer, status, body, content_type, method == "HEAD", not keep)
        return keep

    async def _send(self, writer, status: int, body: bytes, content_type: str, head_only: bool, close: bool,
                    allow: bool = False) -> None:
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}", f"Content-Type: {content_type}",
                 f"Content-Length: {len(body)}", "Server: hts-serve"]
        if allow:
            lines.append("Allow: GET, HEAD")
        if close:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        writer.write(head if head_only else head + body)
        await asyncio.wait_for(writer.drain(), self.write_timeout)
