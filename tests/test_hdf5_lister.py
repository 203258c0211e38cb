"""The HDF5 fork server (hts.adapters.hdf5_lister): listings run outside this process, a crash or a hang ends only
the forked child, servers are reused, shared safely between threads, never reused in a state they could be
confused in, and never inherited across os.fork()."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")
from hts.adapters import hdf5_lister  # noqa: E402

SEGFAULT = os.path.join(os.path.dirname(__file__), "..", "bench", "results", "fuzz_keras_hdf5_segfault.weights.h5")


def weights_file(folder, rows: int) -> str:
    path = os.path.join(folder, f"m{rows}.weights.h5")
    with h5py.File(path, "w") as f:
        f.create_group("layers/dense/vars").create_dataset("0", data=np.ones((rows, 3), np.float32))
    return path


def listed_shapes(outcome) -> list:
    assert outcome.end == "exit" and outcome.code == 0, outcome
    listing = json.loads(outcome.out)
    assert listing["ok"], listing
    return [v["shape"] for _, variables in listing["layers"] for v in variables]


def idle_pids() -> set:
    with hdf5_lister._POOL.lock:
        return {s.proc.pid for s in hdf5_lister._POOL.idle}


def test_listing_is_right_and_the_server_is_reused(tmp_path):
    a, b = weights_file(tmp_path, 5), weights_file(tmp_path, 7)
    assert listed_shapes(hdf5_lister.list_hdf5(a, None, 10)) == [[5, 3]]
    first = idle_pids()
    assert listed_shapes(hdf5_lister.list_hdf5(b, None, 10)) == [[7, 3]]
    assert first and idle_pids() & first, "the idle server was not reused"


def test_a_crash_ends_only_the_child_and_the_server_goes_on(tmp_path):
    outcome = hdf5_lister.list_hdf5(os.path.abspath(SEGFAULT), None, 10)
    assert outcome.end == "signal", outcome
    servers = idle_pids()
    assert servers, "the server itself died with the child"
    assert listed_shapes(hdf5_lister.list_hdf5(weights_file(tmp_path, 4), None, 10)) == [[4, 3]]
    assert idle_pids() & servers


def test_a_hang_is_killed_after_the_timeout_and_the_server_goes_on(tmp_path):
    fifo = str(tmp_path / "never-written.h5")
    os.mkfifo(fifo)  # opening it for reading blocks until a writer comes: a listing that never ends
    outcome = hdf5_lister.list_hdf5(fifo, None, 1.0)
    assert outcome.end == "timeout", outcome
    assert listed_shapes(hdf5_lister.list_hdf5(weights_file(tmp_path, 6), None, 10)) == [[6, 3]]


def test_a_dead_server_is_replaced(tmp_path):
    path = weights_file(tmp_path, 3)
    listed_shapes(hdf5_lister.list_hdf5(path, None, 10))
    for pid in idle_pids():
        os.kill(pid, 9)
    for server in list(hdf5_lister._POOL.idle):
        server.proc.wait(timeout=5)
    assert listed_shapes(hdf5_lister.list_hdf5(path, None, 10)) == [[3, 3]]


def test_an_interrupted_request_kills_its_server(tmp_path, monkeypatch):
    path = weights_file(tmp_path, 3)
    listed_shapes(hdf5_lister.list_hdf5(path, None, 10))
    started = []
    real_init = hdf5_lister._Server.__init__

    def spy(self):
        real_init(self)
        started.append(self)

    def interrupted(self, deadline):
        raise KeyboardInterrupt

    hdf5_lister.close_idle()
    monkeypatch.setattr(hdf5_lister._Server, "__init__", spy)
    monkeypatch.setattr(hdf5_lister._Server, "_line", interrupted)
    with pytest.raises(KeyboardInterrupt):
        hdf5_lister.list_hdf5(path, None, 10)
    assert len(started) == 1 and started[0].proc.poll() is not None, "the interrupted server is still running"
    assert started[0] not in hdf5_lister._POOL.idle


def test_threads_list_at_once(tmp_path):
    paths = [weights_file(tmp_path, rows) for rows in range(2, 10)]
    results, errors = {}, []

    def work(path):
        try:
            for _ in range(3):
                results.setdefault(path, []).append(listed_shapes(hdf5_lister.list_hdf5(path, None, 20)))
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for rows, path in zip(range(2, 10), paths):
        assert results[path] == [[[rows, 3]]] * 3
    assert len(hdf5_lister._POOL.idle) <= hdf5_lister.MAX_IDLE


def test_a_forked_child_does_not_use_the_parents_servers(tmp_path):
    path = weights_file(tmp_path, 5)
    listed_shapes(hdf5_lister.list_hdf5(path, None, 10))
    parents = idle_pids()
    assert parents
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        ok = 1
        try:
            ok = int(not idle_pids() and listed_shapes(hdf5_lister.list_hdf5(path, None, 10)) == [[5, 3]])
        finally:
            os.write(write_end, str(ok).encode())
            os._exit(0)
    os.close(write_end)
    answer = os.read(read_end, 10)
    os.close(read_end)
    os.waitpid(pid, 0)
    assert answer == b"1", "the forked child saw the parent's servers or could not list"
    assert idle_pids() & parents, "the parent's servers were disturbed by the child"
    assert listed_shapes(hdf5_lister.list_hdf5(path, None, 10)) == [[5, 3]]
