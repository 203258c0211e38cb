"""Runs ``hdf5_inventory.py`` on an HDF5 file outside this process, and fast.

libhdf5 can crash on a damaged file, so hts never opens an untrusted HDF5 file in its own process (see
``hdf5_inventory.py``). Starting a fresh interpreter and importing h5py for every file costs ~0.2 s, so the
listing goes through a small fork server: a child process (``hdf5_inventory.py --serve``) that imported h5py
once and forks one short-lived grandchild per file. A crash or hang kills only that grandchild; the server
reports how it ended. Servers are kept in a small idle pool (at most :data:`MAX_IDLE`, guarded by a lock; a
thread takes one for the length of one listing, so concurrent listings run in parallel in separate servers).
A server whose state is unknown (it died, did not answer in time, or the caller was interrupted mid-request) is
killed, never reused. Servers run in their own session, so a Ctrl-C in the terminal reaches only hts, and they
exit when hts closes their stdin (at exit, or when hts itself dies). After ``os.fork()`` the child process
starts with an empty pool (the parent's servers are the parent's). Where ``os.fork`` does not exist, each
listing runs the script in a fresh interpreter as before.
"""

from __future__ import annotations

import atexit
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from typing import NamedTuple

_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hdf5_inventory.py")

#: Idle fork servers kept for the next listing; more are started while several threads list at once.
MAX_IDLE = 2
#: Extra seconds the caller waits for a server's answer beyond the listing's own timeout (which the server
#: enforces on its grandchild) before it gives the server up.
ANSWER_GRACE_S = 10.0


class Outcome(NamedTuple):
    """How the listing process ended: ``end`` is "exit" (``code`` = exit status), "signal" (``code`` = the
    signal number) or "timeout"; ``out`` and ``err`` are what it wrote on stdout and stderr."""

    end: str
    code: int
    out: bytes
    err: bytes


class _Broken(Exception):
    """The server died or broke the protocol: the request is retried in a one-off process."""


class _Server:
    def __init__(self) -> None:
        self.owner = os.getpid()
        self.proc = subprocess.Popen([sys.executable, _SCRIPT, "--serve"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     cwd=os.path.abspath(os.sep), start_new_session=True)
        self.pending = b""

    def ask(self, path: str, member: tuple[int, int] | None, timeout: float) -> Outcome:
        request = json.dumps({"path": path, "member": list(member) if member else None, "timeout": timeout})
        try:
            self.proc.stdin.write(request.encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as err:
            raise _Broken(str(err)) from None
        deadline = time.monotonic() + timeout + ANSWER_GRACE_S
        head = self._line(deadline)
        try:
            reply = json.loads(head)
            n_out, n_err = int(reply["out"]), int(reply["err"])
            end, code = str(reply["end"]), int(reply["code"])
        except (ValueError, KeyError, TypeError) as err:
            raise _Broken(f"bad answer {head[:100]!r}: {err}") from None
        body = self._exactly(n_out + n_err, deadline)
        return Outcome(end, code, body[:n_out], body[n_out:])

    def _fill(self, deadline: float) -> None:
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise _Broken("no answer in time")
        data = os.read(fd, 1 << 20)
        if not data:
            raise _Broken("the server exited")
        self.pending += data

    def _line(self, deadline: float) -> bytes:
        while b"\n" not in self.pending:
            self._fill(deadline)
        line, self.pending = self.pending.split(b"\n", 1)
        return line

    def _exactly(self, n: int, deadline: float) -> bytes:
        while len(self.pending) < n:
            self._fill(deadline)
        data, self.pending = self.pending[:n], self.pending[n:]
        return data

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            self.kill()
        finally:
            self.proc.stdout.close()

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the server and a grandchild it may be waiting for
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass


class _Pool:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.idle: list[_Server] = []

    def take(self) -> _Server:
        dead = []
        try:
            with self.lock:
                while self.idle:
                    server = self.idle.pop()
                    if server.proc.poll() is None:
                        return server
                    dead.append(server)
        finally:
            for server in dead:
                server.kill()  # reaps it and closes its pipes
        return _Server()

    def give_back(self, server: _Server) -> None:
        with self.lock:
            if server.owner == os.getpid() and len(self.idle) < MAX_IDLE:
                self.idle.append(server)
                return
        server.close()

    def close_all(self) -> None:
        with self.lock:
            servers, self.idle = self.idle, []
        for server in servers:
            if server.owner == os.getpid():
                server.close()

    def forget(self) -> None:
        """In a forked child: the servers belong to the parent; drop them without touching their pipes."""
        self.lock = threading.Lock()
        self.idle = []


_POOL = _Pool()


def close_idle() -> None:
    """Ends the idle fork servers (done at exit; a later listing starts a new one)."""
    _POOL.close_all()


atexit.register(close_idle)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_POOL.forget)


def list_hdf5(path: str, member: tuple[int, int] | None, timeout: float) -> Outcome:
    """Runs the inventory of ``path`` (or of the stored zip member at ``member`` = (offset, size)) in another
    process, killed after ``timeout`` seconds."""
    if hasattr(os, "fork"):
        try:
            server = _POOL.take()
        except OSError:
            server = None
        if server is not None:
            try:
                outcome = server.ask(path, member, timeout)
            except _Broken:
                server.kill()
            except BaseException:
                server.kill()  # interrupted mid-request: the server's state is unknown
                raise
            else:
                _POOL.give_back(server)
                return outcome
    return _one_off(path, member, timeout)


def _one_off(path: str, member: tuple[int, int] | None, timeout: float) -> Outcome:
    args = [sys.executable, _SCRIPT, path] + ([str(member[0]), str(member[1])] if member else [])
    try:
        proc = subprocess.run(args, capture_output=True, timeout=timeout, cwd=os.path.abspath(os.sep),
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return Outcome("timeout", 0, b"", b"")
    if proc.returncode < 0:
        return Outcome("signal", -proc.returncode, proc.stdout, proc.stderr)
    return Outcome("exit", proc.returncode, proc.stdout, proc.stderr)
