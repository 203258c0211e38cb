"""hts.analyze reads the next kernel batch while the current one is solved (bounded prefetch, issue 15 item 4):
same rows as the serial path, reading done on the prefetch thread, at most one batch ahead, and no thread
left behind on Cancelled or on an error."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import hts
from hts import analysis


@pytest.fixture
def model(rng) -> dict:
    return {f"fc{i}.weight": rng.standard_t(3, size=(150 + 7 * i, 40 + 3 * i)) for i in range(8)}


@pytest.fixture
def one_layer_per_batch(monkeypatch):
    monkeypatch.setattr(analysis, "BATCH_BYTES", 1)


def comparable(rows: list) -> list:
    return [{k: v for k, v in r.items() if k != "time"} for r in rows]


def record_loads(monkeypatch) -> list:
    """Wraps _Runner.load to record (thread name, first key, loads in flight at its start)."""
    seen, inflight, lock = [], [0], threading.Lock()
    original = analysis._Runner.load

    def load(self, batch, stop):
        with lock:
            inflight[0] += 1
            seen.append((threading.current_thread().name, batch[0][1].longname, inflight[0]))
        try:
            return original(self, batch, stop)
        finally:
            with lock:
                inflight[0] -= 1

    monkeypatch.setattr(analysis._Runner, "load", load)
    return seen


def test_prefetched_rows_equal_serial_rows(model, one_layer_per_batch, monkeypatch):
    serial = hts.analyze(model, threads=1)
    seen = record_loads(monkeypatch)
    ahead = hts.analyze(model, threads=2)
    assert comparable(ahead.rows) == comparable(serial.rows)
    assert [name for name, _, _ in seen] and all(name.startswith("hts-prefetch") for name, _, _ in seen)
    assert [key for _, key, _ in seen] == [f"fc{i}" for i in range(8)]  # in model order, each once
    assert max(n for _, _, n in seen) == 1  # bounded: one batch read at a time


def test_no_read_ahead_beyond_the_bound(model, one_layer_per_batch, monkeypatch):
    """Bounded memory: a batch is read ahead only when it fits beside the one being solved within
    READ_AHEAD_BYTES (decoded); the others are read by the calling thread in their turn. Same rows."""
    small = {k: v.astype(np.float32) for k, v in model.items()}
    serial = hts.analyze(small, threads=1, precision="float64")
    size = [small[f"fc{i}.weight"].size * 4 for i in range(8)]
    monkeypatch.setattr(analysis, "READ_AHEAD_BYTES", size[3] + size[4])  # fc3 + fc4 fit, fc4 + fc5 do not
    seen = record_loads(monkeypatch)
    ahead = hts.analyze(small, threads=2, precision="float64")
    assert [key for _, key, _ in seen] == [f"fc{i}" for i in range(8)]
    where = {key: name for name, key, _ in seen}
    assert all(where[f"fc{i}"].startswith("hts-prefetch") for i in range(5)), where
    assert all(where[f"fc{i}"] == threading.current_thread().name for i in range(5, 8)), where
    assert comparable(ahead.rows) == comparable(serial.rows)


def test_one_thread_reads_in_the_calling_thread(model, one_layer_per_batch, monkeypatch):
    seen = record_loads(monkeypatch)
    hts.analyze(model, threads=1)
    assert {name for name, _, _ in seen} == {threading.current_thread().name}


def test_no_prefetch_thread_outlives_a_cancel(model, one_layer_per_batch):
    event = threading.Event()

    def progress(done, total, name):
        if done == 2:
            event.set()

    with pytest.raises(hts.Cancelled, match="after 2 of 8 layers"):
        hts.analyze(model, threads=2, cancel=event, progress=progress)
    assert not [t for t in threading.enumerate() if t.name.startswith("hts-prefetch")]


def test_unreadable_tensor_in_a_prefetched_batch_is_a_failed_row(model, one_layer_per_batch, monkeypatch):
    original = analysis._Runner.load

    def load(self, batch, stop):
        if batch[0][1].longname == "fc5":
            def broken():
                raise OSError("disk gone")
            object.__setattr__(batch[0][1], "load", broken)  # a frozen dataclass: this one tensor only
        return original(self, batch, stop)

    monkeypatch.setattr(analysis._Runner, "load", load)
    rows = {r["longname"]: r for r in hts.analyze(model, threads=2).rows}
    assert rows["fc5"]["status"] == "failed" and "disk gone" in rows["fc5"]["reason"]
    assert all(rows[f"fc{i}"]["status"] == "success" for i in range(8) if i != 5)
    assert not [t for t in threading.enumerate() if t.name.startswith("hts-prefetch")]
