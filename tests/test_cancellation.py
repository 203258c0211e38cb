"""hts.analyze stops on request (cancel event, progress returning False, time budget) and picks its threads
from OMP_NUM_THREADS and the CPU affinity."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import hts
from hts import _threads, analysis


@pytest.fixture
def model(rng) -> dict:
    """Twelve small dense layers (all in one kernel batch)."""
    return {f"fc{i}.weight": rng.standard_t(3, size=(120 + 10 * i, 60)) for i in range(12)}


def worker_threads() -> set:
    return {t for t in threading.enumerate() if t is not threading.current_thread()}


def test_a_set_event_stops_before_any_layer(model):
    event = threading.Event()
    event.set()
    with pytest.raises(hts.Cancelled, match=r"after 0 of 12 layers .*cancel event was set") as info:
        hts.analyze(model, cancel=event)
    assert (info.value.done, info.value.total) == (0, 12)


def test_event_set_during_the_analysis_stops_at_the_next_layer(model):
    event = threading.Event()
    seen = []

    def progress(done, total, name):
        seen.append(done)
        if done == 3:
            event.set()

    before = worker_threads()
    with pytest.raises(hts.Cancelled, match="after 3 of 12 layers") as info:
        hts.analyze(model, cancel=event, progress=progress, threads=2)
    assert info.value.done == 3 and seen == [1, 2, 3]
    assert worker_threads() <= before, "a worker thread outlived the Cancelled"


@pytest.mark.parametrize("batch_bytes", [analysis.BATCH_BYTES, 1], ids=["one-batch", "batch-per-layer"])
def test_progress_returning_false_stops(model, monkeypatch, batch_bytes):
    monkeypatch.setattr(analysis, "BATCH_BYTES", batch_bytes)
    calls = []

    def progress(done, total, name):
        calls.append(name)
        return False if done == 5 else None

    with pytest.raises(hts.Cancelled, match="after 5 of 12 layers .*progress callback returned False"):
        hts.analyze(model, progress=progress)
    assert calls == [f"fc{i}" for i in range(5)]


def test_progress_returning_none_or_falsy_values_goes_on(model):
    for value in (None, 0, "", True):
        a = hts.analyze(model, progress=lambda *_, v=value: v)
        assert a.counts["analysed"] == 12


def test_cancel_is_polled_by_the_workers_between_layers(model, monkeypatch):
    """The flag is read at every layer boundary, in the workers too: once it reads set, no further layer is
    fitted, even before the calling thread looks again."""

    class CountingFlag:
        def __init__(self, after: int) -> None:
            self.after, self.calls, self.lock = after, 0, threading.Lock()

        def is_set(self) -> bool:
            with self.lock:
                self.calls += 1
                return self.calls > self.after

    fitted = []
    real = analysis.fit_layer
    monkeypatch.setattr(analysis, "fit_layer", lambda ev, **kw: fitted.append(1) or real(ev, **kw))
    flag = CountingFlag(after=16)
    with pytest.raises(hts.Cancelled):
        hts.analyze(model, cancel=flag, threads=1)
    assert 0 < len(fitted) < 12


def test_time_budget_stops_between_layers(model):
    def slow(done, total, name):
        time.sleep(0.15)

    t0 = time.monotonic()
    with pytest.raises(hts.Cancelled, match=r"time budget of 0\.4 s ran out") as info:
        hts.analyze(model, progress=slow, time_budget=0.4)
    assert 1 <= info.value.done < 12
    assert time.monotonic() - t0 < 0.4 + 12 * 0.15


def test_a_generous_time_budget_changes_nothing(model):
    plain = hts.analyze(model, threads=1)
    budgeted = hts.analyze(model, threads=1, time_budget=600, cancel=threading.Event())
    for a, b in zip(plain.rows, budgeted.rows):
        assert {k: v for k, v in a.items() if k != "time"} == {k: v for k, v in b.items() if k != "time"}


def test_cancel_from_another_thread(rng):
    model = {f"l{i}.weight": rng.standard_normal((400, 300)) for i in range(40)}
    event = threading.Event()
    started = threading.Event()
    outcome = {}

    def run():
        try:
            hts.analyze(model, cancel=event, threads=1, progress=lambda *_: started.set())
            outcome["result"] = "finished"
        except hts.Cancelled as err:
            outcome["result"] = err

    thread = threading.Thread(target=run)
    thread.start()
    assert started.wait(60)
    event.set()
    thread.join(60)
    assert not thread.is_alive()
    assert isinstance(outcome["result"], hts.Cancelled), outcome


@pytest.mark.parametrize("bad, error", [
    ({"cancel": True}, TypeError), ({"cancel": "stop"}, TypeError), ({"time_budget": 0}, ValueError),
    ({"time_budget": -1.0}, ValueError), ({"time_budget": float("nan")}, ValueError),
    ({"time_budget": "5"}, ValueError), ({"time_budget": True}, ValueError),
])
def test_bad_stop_options_are_refused(model, bad, error):
    with pytest.raises(error):
        hts.analyze(model, **bad)


def test_cancelled_is_an_hts_error():
    assert issubclass(hts.Cancelled, hts.HTSError)
    assert hts.Cancelled("x").done is None


# -- threads ---------------------------------------------------------------------------------------------------

def test_default_threads_follow_omp_num_threads_and_affinity(monkeypatch):
    monkeypatch.setattr(_threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5}, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert _threads.resolve_threads(None) == 6
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert _threads.resolve_threads(None) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "4,2")  # nested OpenMP syntax: the outer level counts
    assert _threads.resolve_threads(None) == 4
    monkeypatch.setenv("OMP_NUM_THREADS", "64")  # never more than the cores we may use
    assert _threads.resolve_threads(None) == 6
    for junk in ("0", "-2", "many", ""):
        monkeypatch.setenv("OMP_NUM_THREADS", junk)
        assert _threads.resolve_threads(None) == 6
    assert _threads.resolve_threads(100) == 6
    assert _threads.resolve_threads(2) == 2
    with pytest.raises(ValueError):
        _threads.resolve_threads(0)
    with pytest.raises(TypeError):
        _threads.resolve_threads(2.0)


def run_child(code: str, **env) -> dict:
    full_env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    full_env.update(env)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env, check=True)
    return json.loads(out.stdout)


CHILD = (
    "import json, os, numpy as np, hts\n"
    "{setup}\n"
    "a = hts.analyze({{'fc.weight': np.random.default_rng(0).standard_normal((64, 32))}})\n"
    "print(json.dumps({{'analyze': a.options['threads'], 'kernel': hts.spectra.kernel_info()['default_threads'],"
    " 'cores': hts.spectra.kernel_info()['cores']}}))\n"
)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this platform")
def test_a_process_pinned_to_one_core_uses_one_thread():
    got = run_child(CHILD.format(setup="os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})"))
    assert got == {"analyze": 1, "kernel": 1, "cores": 1}


def test_omp_num_threads_caps_the_default_in_a_fresh_process():
    got = run_child(CHILD.format(setup=""), OMP_NUM_THREADS="1")
    assert got["analyze"] == 1 and got["kernel"] == 1
    free = run_child(CHILD.format(setup=""))
    assert free["analyze"] == free["kernel"] == free["cores"] == _threads.available_cores()


# --- intra=True (pairs of consecutive layers) stops and reports progress the same way --------------------------
def test_intra_a_set_event_stops_before_any_layer(model):
    event = threading.Event()
    event.set()
    with pytest.raises(hts.Cancelled, match=r"after 0 of 12 layers .*cancel event was set"):
        hts.analyze(model, intra=True, cancel=event)


def test_intra_progress_returning_false_stops(model):
    calls = []

    def progress(done, total, name):
        calls.append((done, total, name))
        return False if done == 5 else None

    with pytest.raises(hts.Cancelled, match="after 5 of 12 layers .*progress callback returned False"):
        hts.analyze(model, intra=True, progress=progress)
    assert calls == [(i + 1, 12, f"fc{i}") for i in range(5)]


def test_intra_time_budget_stops_between_layers(model):
    with pytest.raises(hts.Cancelled, match=r"time budget of 0\.2 s ran out") as info:
        hts.analyze(model, intra=True, progress=lambda *_: time.sleep(0.05), time_budget=0.2)
    assert 1 <= info.value.done < 12


def test_intra_progress_sees_every_layer_and_changes_nothing(model):
    calls = []
    plain = hts.analyze(model, intra=True, threads=1)
    watched = hts.analyze(model, intra=True, threads=1, progress=lambda *a: calls.append(a), time_budget=600,
                          cancel=threading.Event())
    assert [c[0] for c in calls] == list(range(1, 13))
    for a, b in zip(plain.rows, watched.rows, strict=True):
        assert {k: v for k, v in a.items() if k != "time"} == {k: v for k, v in b.items() if k != "time"}


def test_inverse_svds_stop_between_layers_of_a_batch(model, monkeypatch):
    """inverse=True takes an SVD per layer (one LAPACK call each): a cancel set during the first one stops the
    batch before the second, not after all twelve."""
    event = threading.Event()
    calls = []
    real = np.linalg.svd

    def svd(*args, **kwargs):
        calls.append(1)
        event.set()
        time.sleep(0.05)  # the stop watcher polls every 10 ms
        return real(*args, **kwargs)

    monkeypatch.setattr(np.linalg, "svd", svd)
    with pytest.raises(hts.Cancelled, match="cancel event"):
        hts.analyze(model, inverse=True, cancel=event, threads=1)
    assert len(calls) == 1
