"""``hts.analyze(randomize=True)``: the randomized ESDs of a batch (shuffled side by side, eigenvalues from one
kernel call), ``randomize_precision``, and the same numbers whatever the threads and batching."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hts
from hts import analysis, spectra

RAND = ("rand_distance", "ww_softrank", "ww_maxdist", "max_rand_eval", "rand_num_spikes", "rand_sigma_mp",
        "rand_mp_softrank", "rand_W_scale", "rand_bulk_max", "rand_bulk_min")


def trained_like(rng, n, m, spikes=4):
    """A random bulk plus a few strong directions (what a shuffle destroys)."""
    w = rng.standard_normal((n, m)) / np.sqrt(n)
    for _ in range(spikes):
        w += 3 * np.outer(rng.standard_normal(n), rng.standard_normal(m)) / n
    return w.astype(np.float32)


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(42)
    return {"a.weight": trained_like(rng, 600, 200), "b.weight": trained_like(rng, 300, 300),
            "c.weight": rng.standard_normal((64, 16, 3, 3)).astype(np.float32),  # conv: 9 slices 64×16
            "d.weight": rng.standard_normal((40, 1, 3, 3)).astype(np.float32),  # depthwise: 40×1 slices
            "e.weight": trained_like(rng, 120, 50)}


def rand_columns(a):
    """The randomize columns of every analysed row, NaN as None (so that == compares them)."""
    return [{k: None if np.isnan(r[k]) else r[k] for k in RAND} for r in a.analysed]


def test_rows_are_the_layer_by_layer_definition(model):
    # Each row's randomized ESD is randomized_eigenvalues of the layer's slices (scaled as its ESD), with the
    # seed derived from (seed, tensor index, slice); float32 where the smaller side is >= 32.
    a = hts.analyze(model, randomize=True, seed=3)
    for i, row in enumerate(a.analysed):
        t = hts.open(model).tensors[i]
        w = model[t.key]
        slices = w.reshape(1, *w.shape) if w.ndim == 2 else np.moveaxis(w, (2, 3), (0, 1)).reshape(-1, *w.shape[:2])
        scale = 0.5 if w.ndim == 4 else 1.0
        base = (3 * 0x9E3779B97F4A7C15 + 4 * i * 65536) % 2**64
        precision = "float32" if min(slices.shape[1:]) >= analysis.RANDOM_FLOAT32_MIN_SIDE else "float64"
        rand = spectra.randomized_eigenvalues(slices, seed=base, precision=precision).astype(np.float64) * scale
        np.testing.assert_array_equal(a.esd(row["layer_id"], randomized=True), np.sort(rand))


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_same_numbers_whatever_the_threads_and_batches(model, precision, monkeypatch):
    base = hts.analyze(model, randomize=True, randomize_precision=precision, seed=11, threads=1)
    for threads in (2, 3):
        again = hts.analyze(model, randomize=True, randomize_precision=precision, seed=11, threads=threads)
        assert rand_columns(again) == rand_columns(base)
    monkeypatch.setattr(analysis, "BATCH_BYTES", 1)  # one layer per batch
    alone = hts.analyze(model, randomize=True, randomize_precision=precision, seed=11, threads=2)
    assert rand_columns(alone) == rand_columns(base)


def test_float32_moves_the_columns_far_less_than_a_new_seed(model):
    """The shuffled ESD is a random draw: float32's round-off (~1e-7·λ_max) must be lost in the seed-to-seed
    spread. For the MP fit, σ is only resolved to the Nelder–Mead tolerance (xatol = 1e-4 on σ of the
    spectrum rescaled to mean 1), so σ and the bulk edges may move by that much."""
    seeds = range(6)
    runs = {p: [hts.analyze(model, randomize=True, randomize_precision=p, seed=s).analysed for s in seeds]
            for p in ("float32", "float64")}
    for layer, row in enumerate(runs["float64"][0]):
        if row["M"] < analysis.RANDOM_FLOAT32_MIN_SIDE:
            continue  # float64 either way (test_narrow_slices_stay_in_float64)
        f64 = {c: np.array([runs["float64"][s][layer][c] for s in seeds], dtype=float) for c in RAND}
        f32 = {c: np.array([runs["float32"][s][layer][c] for s in seeds], dtype=float) for c in RAND}
        np.testing.assert_array_equal(f32["rand_num_spikes"], f64["rand_num_spikes"])
        for c in ("rand_distance", "ww_softrank", "ww_maxdist", "max_rand_eval"):
            spread = np.std(f64[c], ddof=1)
            assert np.abs(f32[c] - f64[c]).max() <= 0.01 * spread, c
        np.testing.assert_allclose(f32["rand_W_scale"], f64["rand_W_scale"], rtol=1e-6)  # Σλ = ‖W‖_F²: no spread
        sigma = f64["rand_sigma_mp"]
        assert np.abs(f32["rand_sigma_mp"] - sigma).max() <= 2e-4 * np.abs(sigma).max()
        np.testing.assert_allclose(f32["rand_bulk_max"], f64["rand_bulk_max"], rtol=5e-4)


def test_narrow_slices_stay_in_float64(model):
    a32 = hts.analyze(model, randomize=True, seed=1)
    a64 = hts.analyze(model, randomize=True, randomize_precision="float64", seed=1)
    for r32, r64, c32, c64 in zip(a32.analysed, a64.analysed, rand_columns(a32), rand_columns(a64)):
        if r32["M"] < analysis.RANDOM_FLOAT32_MIN_SIDE:
            assert c32 == c64, r32["longname"]
        else:
            assert c32 != c64, r32["longname"]
    assert a32.options["randomize_precision"] == "float32"


def test_unpooled_dense_and_conv_rows(model):
    # pool=False: one randomized ESD per row; a dense layer's row is the whole matrix (slice 0).
    a = hts.analyze(model, randomize=True, pool=False, seed=5)
    for row in a.analysed:
        rand = a.esd(row["layer_id"], row["slice_id"], randomized=True)
        assert rand.size == (5 if row["M"] < 100 else 1) * row["M"]
        assert row["max_rand_eval"] == rand[-1]


def test_float64_weights_beyond_float32_range_fall_back_to_float64(rng):
    w = rng.standard_normal((80, 40)) * 1e25  # the float32 Gram would overflow
    a = hts.analyze({"w.weight": w}, randomize=True, seed=2)
    b = hts.analyze({"w.weight": w}, randomize=True, randomize_precision="float64", seed=2)
    assert a.rows[0]["status"] == "success"
    assert rand_columns(a) == rand_columns(b)


def test_randomize_precision_is_checked(model):
    with pytest.raises(ValueError, match="randomize_precision"):
        hts.analyze(model, randomize=True, randomize_precision="float16")


# ---------------------------------------------------------------------------------------------------------
# spectra.randomized_eigenvalue_batch: the native batch behind analyze(randomize=True)


@settings(max_examples=25, deadline=None)
@given(shapes=st.lists(st.tuples(st.integers(1, 3), st.integers(1, 40), st.integers(1, 40), st.integers(1, 3)),
                       min_size=1, max_size=5),
       seed=st.integers(0, 2**64 - 1), f32_in=st.booleans(), precision=st.sampled_from(["float32", "float64"]),
       threads=st.integers(1, 4))
def test_batch_is_shuffle_then_eigenvalues_hypothesis(shapes, seed, f32_in, precision, threads):
    rng = np.random.default_rng(seed % 2**32)
    dtype = np.float32 if f32_in else np.float64
    arrays = [rng.standard_normal((k, n, m)).astype(dtype) for k, n, m, _ in shapes]
    arrays[0] = arrays[0][0]  # a 2-D one too
    seeds = [(seed + i) % 2**64 for i in range(len(arrays))]
    replicas = [r for *_, r in shapes]
    got = spectra.randomized_eigenvalue_batch(arrays, seeds=seeds, replicas=replicas, precision=precision,
                                              threads=threads)
    for a, s, r, ev in zip(arrays, seeds, replicas, got):
        shuffled = spectra.shuffle_elements(a, seed=s, replicas=r)
        want = spectra.eigenvalues(shuffled.reshape(-1, *a.shape[-2:]), precision=precision)
        np.testing.assert_array_equal(ev, want)


def test_batch_of_large_layers_is_thread_independent(rng):
    # One layer costs more than the others together (done alone with every thread), bucketed shuffles.
    arrays = [rng.standard_normal((3000, 120)).astype(np.float32), rng.standard_normal((200, 180)),
              rng.standard_normal((9, 64, 32)).astype(np.float32)]
    kw = dict(seeds=[1, 2, 3], replicas=[1, 1, 2], precision="float32")
    base = spectra.randomized_eigenvalue_batch(arrays, threads=1, **kw)
    for threads in (2, 5):
        for a, b in zip(base, spectra.randomized_eigenvalue_batch(arrays, threads=threads, **kw)):
            np.testing.assert_array_equal(a, b)
    assert [b.shape for b in base] == [(1, 120), (1, 180), (18, 32)]


def test_batch_errors(rng):
    ok = rng.standard_normal((20, 10))
    huge = ok * 1e25  # its float32 Gram overflows
    with pytest.raises(spectra.BatchItemError) as info:
        spectra.randomized_eigenvalue_batch([ok, huge, ok], seeds=[1, 2, 3], replicas=[1, 1, 1],
                                            precision="float32", threads=2)
    assert info.value.index == 1
    with pytest.raises(ValueError, match="one seed"):
        spectra.randomized_eigenvalue_batch([ok], seeds=[1, 2], replicas=[1])
    with pytest.raises(ValueError, match="replicas"):
        spectra.randomized_eigenvalue_batch([ok], seeds=[1], replicas=[0])
    with pytest.raises(ValueError, match="precision"):
        spectra.randomized_eigenvalue_batch([ok], seeds=[1], replicas=[1], precision="half")


@pytest.mark.parametrize("batch_bytes", [analysis.BATCH_BYTES, 1], ids=["one-batch", "batch-per-layer"])
def test_cancellation_with_randomize(model, monkeypatch, batch_bytes):
    import threading

    monkeypatch.setattr(analysis, "BATCH_BYTES", batch_bytes)
    with pytest.raises(hts.Cancelled, match="after 2 of 5 layers .*progress callback returned False"):
        hts.analyze(model, randomize=True, threads=2, progress=lambda done, *_: False if done == 2 else None)
    event = threading.Event()
    event.set()
    with pytest.raises(hts.Cancelled, match="after 0 of 5 layers"):
        hts.analyze(model, randomize=True, cancel=event)

    class SetAfter:  # reads clear for the first few polls, then set: stops between the ESDs and the shuffles
        def __init__(self, polls: int) -> None:
            self.polls = polls

        def is_set(self) -> bool:
            self.polls -= 1
            return self.polls < 0

    for polls in range(1, 8):
        with pytest.raises(hts.Cancelled):
            hts.analyze(model, randomize=True, cancel=SetAfter(polls), threads=2)
