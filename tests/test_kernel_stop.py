"""The kernel's stop flag (issue 19 item 12): a running eigenvalue batch gives up at its next safe point (between
Gram tiles, slabs, chunks and matrices, before each eigensolve and SVD refine) once the flag is set, instead of
running to the end of the batch; ``hts.analyze``'s ``cancel``/``time_budget`` set it through ``StopCheck.native``.
The conv-operator kernel (``conv_method="fft"``) reads it before each frequency and each eigensolve."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import hts
from hts import spectra
from hts._native import _core
from hts._stop import StopCheck


def big(rng, rows=24000, cols=1200) -> np.ndarray:
    """A float64 matrix whose Gram matrix takes several tiles (1200 > 512) and seconds on one thread."""
    return rng.standard_normal((rows, cols))


def test_a_set_flag_stops_before_any_work(rng):
    flag = _core.StopFlag()
    flag.set()
    assert flag.is_set()
    with pytest.raises(_core.Stopped):
        spectra.eigenvalues([rng.standard_normal((50, 20))], threads=1, stop=flag)


def test_a_clear_flag_changes_nothing(rng):
    ws = [rng.standard_normal((300, 100)), rng.standard_normal((40, 700)).astype(np.float32)]
    flag = _core.StopFlag()
    got = spectra.eigenvalues(ws, threads=2, stop=flag)
    want = spectra.eigenvalues(ws, threads=2)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("shape", [(24000, 1200), (1200, 24000)])
def test_a_flag_set_while_the_kernel_runs_stops_it_mid_matrix(rng, shape):
    """One large matrix (one batch item): before the flag existed, the call always ran to the end."""
    w = big(rng, *shape)
    flag = _core.StopFlag()
    timer = threading.Timer(0.05, flag.set)
    timer.start()
    try:
        with pytest.raises(_core.Stopped):
            spectra.eigenvalues([w], threads=1, stop=flag)
    finally:
        timer.cancel()


def test_strided_float32_input_converted_chunk_by_chunk_is_stopped_too(rng):
    w = big(rng).astype(np.float32)[:, ::2]  # strided: converted chunk by chunk in float64
    flag = _core.StopFlag()
    timer = threading.Timer(0.05, flag.set)
    timer.start()
    try:
        with pytest.raises(_core.Stopped):
            _core.gram_eigenvalues([w], "float64", 1, chunked_convert_min=0, chunk_bytes=1 << 20, stop=flag)
    finally:
        timer.cancel()


def test_stopcheck_native_sets_the_flag_from_cancel_and_from_the_budget():
    cancel = threading.Event()
    stop = StopCheck(cancel)
    with stop.native() as flag:
        assert not flag.is_set()
        cancel.set()
        for _ in range(500):
            if flag.is_set():
                break
            threading.Event().wait(0.01)
        assert flag.is_set()
    with StopCheck(None, 0.01).native() as flag:
        threading.Event().wait(0.2)
        assert flag.is_set()
    with StopCheck().native() as flag:  # nothing to stop on: no flag, no thread
        assert flag is None


def cancelled_mid_call(monkeypatch, name: str, model: dict, **options) -> list:
    """Runs ``hts.analyze(model, **options)`` with ``spectra.<name>`` wrapped so that the cancel event is set
    50 ms into each call; expects ``hts.Cancelled`` and returns what the wrapped calls did ("stopped": raised
    Stopped, "finished": returned)."""
    real = getattr(spectra, name)
    outcome = []
    cancel = threading.Event()

    def recording(*args, **kwargs):
        threading.Timer(0.05, cancel.set).start()  # set while the kernel runs
        try:
            out = real(*args, **kwargs)
        except _core.Stopped:
            outcome.append("stopped")
            raise
        outcome.append("finished")
        return out

    monkeypatch.setattr(spectra, name, recording)
    with pytest.raises(hts.Cancelled, match="cancel event"):
        hts.analyze(model, cancel=cancel, threads=1, **options)
    return outcome


def test_analyze_cancel_interrupts_the_running_kernel_call(rng, monkeypatch):
    """The cancel event set during the eigensolve of a large layer raises hts.Cancelled, and the kernel call
    itself was interrupted (it raised Stopped rather than returning)."""
    assert cancelled_mid_call(monkeypatch, "eigenvalues", {"big.weight": big(rng)}) == ["stopped"]


# --- the conv-operator kernel (conv_method="fft") ----------------------------------------------------------
def conv_kernel(rng, side=256) -> np.ndarray:
    """A 3×3 conv kernel whose operator spectrum on a 16×16 input takes ~1.5 s on one thread (128 complex
    frequencies, each a 256-wide herk + heevd): long enough to be caught mid-call."""
    return rng.standard_normal((side, side, 3, 3))


@pytest.mark.parametrize("groups", [1, 4])
def test_conv_a_set_flag_stops_before_any_work(rng, groups):
    flag = _core.StopFlag()
    flag.set()
    with pytest.raises(_core.Stopped):
        spectra.conv_operator_eigenvalues(rng.standard_normal((16, 8 // groups * 2, 3, 3)), input_size=8,
                                          groups=groups, threads=1, stop=flag)


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_conv_a_clear_flag_changes_nothing(rng, precision):
    k = rng.standard_normal((24, 40, 3, 3))
    got = spectra.conv_operator_eigenvalues(k, input_size=(9, 10), precision=precision, threads=2,
                                            stop=_core.StopFlag())
    np.testing.assert_array_equal(got, spectra.conv_operator_eigenvalues(k, input_size=(9, 10),
                                                                         precision=precision, threads=2))


@pytest.mark.parametrize("threads", [1, 2])
def test_conv_a_flag_set_while_the_kernel_runs_stops_it_mid_spectrum(rng, threads):
    """One conv layer is one kernel call: before the flag reached this kernel, the whole spectrum was computed
    whatever the flag said."""
    k = conv_kernel(rng)
    flag = _core.StopFlag()
    timer = threading.Timer(0.05, flag.set)
    timer.start()
    try:
        with pytest.raises(_core.Stopped):
            spectra.conv_operator_eigenvalues(k, input_size=16, threads=threads, stop=flag)
    finally:
        timer.cancel()


def test_analyze_cancel_interrupts_a_running_conv_operator_spectrum(rng, monkeypatch):
    got = cancelled_mid_call(monkeypatch, "conv_operator_eigenvalues", {"conv.weight": conv_kernel(rng)},
                             conv_method="fft", conv_input_size=12, max_evals=50_000)
    assert got == ["stopped"]


# --- the randomized-ESD batch (randomize=True) ---------------------------------------------------------------
def test_randomized_batch_a_set_flag_stops_before_any_work(rng):
    flag = _core.StopFlag()
    flag.set()
    with pytest.raises(_core.Stopped):
        spectra.randomized_eigenvalue_batch([rng.standard_normal((50, 20))], seeds=[1], replicas=[1], threads=1,
                                            stop=flag)


def test_randomized_batch_a_clear_flag_changes_nothing(rng):
    ws = [rng.standard_normal((300, 100)), rng.standard_normal((3, 40, 20)).astype(np.float32)]
    kw = dict(seeds=[7, 8], replicas=[1, 5], threads=2)
    got = spectra.randomized_eigenvalue_batch(ws, stop=_core.StopFlag(), **kw)
    for g, w in zip(got, spectra.randomized_eigenvalue_batch(ws, **kw)):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("threads", [1, 2])
def test_randomized_batch_a_flag_set_while_it_runs_stops_it(rng, threads):
    """Several large shuffles in one call: before the flag reached this kernel, the whole batch ran."""
    ws = [big(rng, 8000, 1000) for _ in range(2)]
    flag = _core.StopFlag()
    timer = threading.Timer(0.05, flag.set)
    timer.start()
    try:
        with pytest.raises(_core.Stopped):
            spectra.randomized_eigenvalue_batch(ws, seeds=[1, 2], replicas=[1, 1], threads=threads, stop=flag)
    finally:
        timer.cancel()


def test_analyze_cancel_interrupts_a_running_randomized_batch(rng, monkeypatch):
    got = cancelled_mid_call(monkeypatch, "randomized_eigenvalue_batch", {"big.weight": big(rng, 8000, 1000)},
                             randomize=True)
    assert got == ["stopped"]
