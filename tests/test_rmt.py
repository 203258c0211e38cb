"""RMT metrics (WeightWatcher 0.7.7's mp_fit=True / randomize=True) against the numpy reference _reference_rmt.

Tolerances. The reference reproduces WeightWatcher's arithmetic step by step (checked bit for bit against
WeightWatcher 0.7.7 on hundreds of spectra, see bench/rmt.py), except for the kernel density estimate, which
no two implementations sum in the same order: the kernel's and the reference's KDE values differ by ~1e-15
relative. The σ search only compares objective values, so σ — and every column derived from it — comes out
identical unless two objective values tie to ~1e-15, which none of these seeded spectra do; the comparisons
allow 1e-12 relative so that a last-bit difference in the KDE reaching the objective cannot fail them. The
Jensen–Shannon distance has no such step: it must be identical.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from _reference_rmt import js_distance, mp_objective, ww_mp_fit, ww_randomization_metrics
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hts import _core, spectra

MP_COLUMNS = ("num_spikes", "sigma_mp", "mp_softrank", "W_scale", "bulk_max", "bulk_min")
RTOL = 1e-12


def svd_evals(w: np.ndarray) -> np.ndarray:
    return np.sort(np.linalg.svd(w, compute_uv=False) ** 2)


def layer(kind: str, N: int, M: int, rng: np.random.Generator) -> np.ndarray:
    """Eigenvalues of a random N×M layer: i.i.d. Gaussian, heavy-tailed, spiked, or a pooled 3×3 conv."""
    if kind == "gauss":
        return svd_evals(rng.standard_normal((N, M)))
    if kind == "heavy":
        return svd_evals(rng.standard_t(2.5, size=(N, M)))
    if kind == "spiked":
        w = rng.standard_normal((N, M)) + 5 * np.outer(rng.standard_normal(N), rng.standard_normal(M)) / (N * M) ** 0.25
        return svd_evals(w)
    if kind == "conv":
        return np.sort(np.concatenate([svd_evals(s) for s in rng.standard_normal((9, N, M)) * 0.05]) * 0.5)
    raise ValueError(kind)


def kde_peak_is_a_tie(ev: np.ndarray, N: int, M: int) -> bool:
    """Whether the reference KDE's maximum is shared, to 1e-12 relative, by grid points other than argmax."""
    from _reference_rmt import KDE_GRID, kde_linear

    x = ev * (ev.size / np.sum(ev))
    fit_data = np.sqrt(x) if N == M else x
    f = kde_linear(fit_data, np.linspace(0.0, np.max(fit_data) + 0.5, KDE_GRID))
    return int(np.count_nonzero(f >= np.max(f) * (1 - 1e-12))) > 1


def assert_fit_matches(fit: spectra.MarchenkoPasturFit, ref: dict) -> None:
    assert fit.status == "success", fit.reason
    assert fit.num_spikes == ref["num_spikes"]
    for key in MP_COLUMNS[1:]:
        assert getattr(fit, key) == pytest.approx(ref[key], rel=RTOL, abs=0), key


# ---------------------------------------------------------------------------------------------------------
# Marchenko–Pastur fit


@pytest.mark.parametrize(
    "kind, N, M",
    [("gauss", 400, 100), ("gauss", 300, 300), ("gauss", 257, 256), ("heavy", 500, 200), ("heavy", 200, 200),
     ("spiked", 600, 150), ("spiked", 250, 250), ("conv", 64, 32), ("gauss", 60, 100), ("heavy", 40, 12)],
    ids=lambda v: str(v),
)
def test_mp_fit_matches_reference(kind, N, M, rng):
    ev = layer(kind, N, M, rng)
    fit = spectra.marchenko_pastur_fit(ev, N=N, M=M)
    assert fit.quarter_circle == (N == M)
    assert fit.Q == N / M
    assert_fit_matches(fit, ww_mp_fit(ev, N, M))


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(["gauss", "heavy", "spiked"]),
    M=st.integers(2, 300),
    q=st.sampled_from([1.0, 1.0, 1.5, 2.0, 3.7, 8.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_mp_fit_matches_reference_hypothesis(kind, M, q, seed):
    N = max(M, int(round(M * q)))
    ev = layer(kind, N, M, np.random.default_rng(seed))
    fit = spectra.marchenko_pastur_fit(ev, N=N, M=M)
    try:
        ref = ww_mp_fit(ev, N, M)
    except ValueError:  # WeightWatcher cannot fit it either (no KDE point above the floor)
        assert fit.status == "failed"
        return
    try:
        assert_fit_matches(fit, ref)
    except AssertionError:
        # A KDE whose maximum is a plateau of grid points equal to the last bits (common on small heavy-tailed
        # layers) has no well-defined peak: which point wins depends on summation order, and the σ window moves
        # with it (e.g. heavy/M=10/q=3.7/seed=146930: 24 points within 1 ulp; differences table, row 20).
        # Only such knife-edge spectra may differ; any other mismatch fails.
        assume(not kde_peak_is_a_tie(ev, N, M))
        raise


def test_objective_matches_reference(rng):
    for N, M in [(400, 100), (200, 200)]:
        ev = svd_evals(rng.standard_normal((N, M)))
        ev = ev * ev.size / ev.sum()
        sigmas = np.linspace(0.05, 2.0, 40)
        ours = _core.marchenko_pastur_objective(ev, N / M, sigmas)
        ref = np.array([mp_objective(ev, N / M, s) for s in sigmas])
        np.testing.assert_allclose(ours, ref, rtol=1e-13, atol=0)


def test_mp_fit_is_order_and_thread_independent(rng):
    ev = np.tile(svd_evals(rng.standard_normal((1200, 600))), 8)  # 4800 values: long enough to use threads
    base = spectra.marchenko_pastur_fit(ev, N=9600, M=4800, threads=1)
    assert base.status == "success"
    assert spectra.marchenko_pastur_fit(ev, N=9600, M=4800, threads=2) == base
    assert spectra.marchenko_pastur_fit(rng.permutation(ev), N=9600, M=4800, threads=1) == base


def test_mp_fit_releases_the_gil_and_is_reentrant(rng):
    from concurrent.futures import ThreadPoolExecutor

    spectra_ = [svd_evals(rng.standard_normal((300 + 10 * i, 150))) for i in range(8)]
    serial = [spectra.marchenko_pastur_fit(ev, N=300 + 10 * i, M=150) for i, ev in enumerate(spectra_)]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda i: spectra.marchenko_pastur_fit(spectra_[i], N=300 + 10 * i, M=150),
                                 range(8)))
    assert threaded == serial


def test_mp_fit_recovers_the_bulk_of_a_gaussian_matrix(rng):
    N, M = 2000, 500
    ev = svd_evals(rng.standard_normal((N, M)))
    fit = spectra.marchenko_pastur_fit(ev, N=N, M=M)
    # The exact edges are N·(1 ± 1/√Q)²; the KDE fit sits within a few percent (its σ is known to run low).
    assert fit.bulk_max == pytest.approx(N * (1 + math.sqrt(M / N)) ** 2, rel=0.05)
    assert fit.bulk_min == pytest.approx(N * (1 - math.sqrt(M / N)) ** 2, rel=0.15)
    assert fit.sigma_mp == pytest.approx(1.0, abs=0.03)
    assert fit.num_spikes == 0
    spiked = np.r_[ev, 30 * ev.max(), 40 * ev.max()]
    assert spectra.marchenko_pastur_fit(spiked, N=N, M=M).num_spikes == 2


@pytest.mark.parametrize(
    "evals, N, M",
    [(np.ones(50), 100, 50), (np.array([3.0]), 10, 1), (np.r_[np.zeros(10), np.linspace(0.5, 2, 90)], 200, 100),
     (np.r_[np.full(300, 0.01), np.full(3, 500.0)], 606, 303), (np.array([1.0, 2.0]), 2, 2)],
    ids=["all-equal", "single", "with-zeros", "two-clusters", "two-values-q1"],
)
def test_mp_fit_tiny_and_degenerate_match_reference(evals, N, M):
    fit = spectra.marchenko_pastur_fit(evals, N=N, M=M)
    assert_fit_matches(fit, ww_mp_fit(evals, N, M))


@pytest.mark.parametrize(
    "evals", [np.array([]), np.zeros(20)], ids=["empty", "all-zero"]
)
def test_mp_fit_degenerate_input_fails_cleanly(evals):
    fit = spectra.marchenko_pastur_fit(evals, N=40, M=20)
    assert fit.status == "failed" and fit.reason
    assert math.isnan(fit.sigma_mp) and fit.num_spikes == 0
    json.dumps(fit.to_dict(), allow_nan=False)


def test_mp_fit_without_dense_kde_point_fails_cleanly():
    # Mean-1 values 0.15 (×1999) and 1700.15: the KDE grid (step ≈ 1.7) passes no point closer than the
    # bandwidth except the lone spike, whose density 10/n is below the 0.01 floor; WeightWatcher's fit raises.
    ev = np.r_[np.full(1999, 0.15), 1700.15]
    with pytest.raises(ValueError):
        ww_mp_fit(ev, 4000, 2000)
    fit = spectra.marchenko_pastur_fit(ev, N=4000, M=2000)
    assert fit.status == "failed" and "floor" in fit.reason


@pytest.mark.parametrize(
    "evals, N, M, error",
    [([1.0, np.nan], 4, 2, ValueError), ([1.0, np.inf], 4, 2, ValueError), ([1.0, -1e-3], 4, 2, ValueError),
     ([1.0, 2.0], 0, 2, ValueError), ([1.0, 2.0], 4, -1, ValueError), ([1.0, 2.0], 4.5, 2, ValueError),
     ([1.0, 2.0], None, 2, TypeError), ([[1.0, 2.0]], 4, 2, TypeError), (["a"], 4, 2, TypeError)],
)
def test_mp_fit_bad_input_raises(evals, N, M, error):
    with pytest.raises(error):
        spectra.marchenko_pastur_fit(np.asarray(evals), N=N, M=M)


def test_mp_fit_to_dict_is_plain():
    fit = spectra.marchenko_pastur_fit(np.linspace(0.5, 2.0, 100), N=200, M=100)
    d = fit.to_dict()
    assert set(MP_COLUMNS) <= set(d)
    json.dumps(d, allow_nan=False)


# ---------------------------------------------------------------------------------------------------------
# Jensen–Shannon distance


def test_js_distance_matches_reference(rng):
    for n in [1, 2, 7, 8, 129, 1000, 5000]:
        p = np.sort(rng.exponential(size=n)) * rng.uniform(0.1, 10)
        q = np.sort(rng.exponential(size=n))
        p[: n // 3] = 0
        assert spectra.jensen_shannon_distance(p, q) == js_distance(p, q)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1e6), st.floats(0, 1e6)), min_size=1, max_size=300))
def test_js_distance_matches_reference_hypothesis(pairs):
    p, q = np.array(pairs).T
    ours, ref = spectra.jensen_shannon_distance(p, q), js_distance(p, q)
    assert ours == ref or (math.isnan(ours) and math.isnan(ref))


def test_js_distance_matches_scipy(rng):
    stats = pytest.importorskip("scipy.stats")
    distance = pytest.importorskip("scipy.spatial.distance")
    p, q = rng.exponential(size=500), rng.exponential(size=500)
    m = (p + q) / 2
    ww_formula = float(np.sqrt((stats.entropy(p, m) + stats.entropy(q, m)) / 2))
    assert spectra.jensen_shannon_distance(p, q) == pytest.approx(ww_formula, rel=1e-14)
    # scipy's jensenshannon normalises p and q before averaging: the same number when both sum to 1.
    pn, qn = p / p.sum(), q / q.sum()
    assert spectra.jensen_shannon_distance(pn, qn) == pytest.approx(distance.jensenshannon(pn, qn), rel=1e-12)


def test_js_distance_properties(rng):
    p, q = rng.exponential(size=200), rng.exponential(size=200)
    assert spectra.jensen_shannon_distance(p, p) == 0.0
    d = spectra.jensen_shannon_distance(p, q)
    assert d == pytest.approx(spectra.jensen_shannon_distance(q, p), rel=1e-15)
    assert 0 < d <= math.sqrt(math.log(2))
    assert spectra.jensen_shannon_distance([1.0, 0.0], [0.0, 1.0]) == pytest.approx(math.sqrt(math.log(2)))
    assert math.isnan(spectra.jensen_shannon_distance([0.0, 0.0], [1.0, 1.0]))


@pytest.mark.parametrize(
    "p, q", [([1.0, 2.0], [1.0]), ([], []), ([1.0, np.nan], [1.0, 1.0]), ([1.0, -1.0], [1.0, 1.0])]
)
def test_js_distance_bad_input(p, q):
    with pytest.raises(ValueError):
        spectra.jensen_shannon_distance(np.asarray(p), np.asarray(q))


# ---------------------------------------------------------------------------------------------------------
# Randomized ESD and the randomize=True columns


def test_randomized_esd_of_iid_matrix_matches_its_esd(rng):
    N, M = 800, 400
    w = rng.standard_normal((N, M))
    ev = spectra.eigenvalues(w)
    rand = spectra.randomized_eigenvalues(w, seed=1)
    assert rand.shape == ev.shape and np.all(np.diff(rand) >= 0)
    assert rand.sum() == pytest.approx(ev.sum(), rel=1e-10)  # ‖W‖_F² is permutation-invariant
    qs = [0.1, 0.25, 0.5, 0.75, 0.9]
    np.testing.assert_allclose(np.quantile(rand, qs), np.quantile(ev, qs), rtol=0.03)
    assert rand.max() == pytest.approx(ev.max(), rel=0.03)
    m = spectra.randomization_metrics(ev, rand, N=N, M=M)
    assert m["rand_distance"] < 0.02
    assert m["ww_softrank"] == pytest.approx(1.0, abs=0.03)
    assert m["rand_num_spikes"] == 0 and m["rand_mp_status"] == "success"
    assert m["rand_sigma_mp"] == pytest.approx(spectra.marchenko_pastur_fit(ev, N=N, M=M).sigma_mp, rel=0.03)


def test_randomization_removes_correlations(rng):
    N, M = 600, 300
    w = 0.1 * rng.standard_normal((N, M)) + np.outer(rng.standard_normal(N), rng.standard_normal(M)) / 10
    ev = spectra.eigenvalues(w)
    m = spectra.randomization_metrics(ev, spectra.randomized_eigenvalues(w, seed=2), N=N, M=M)
    assert m["ww_softrank"] < 0.5 and m["ww_maxdist"] > 0
    assert m["rand_num_spikes"] <= 1  # the mean of W survives a shuffle as one rank-1 spike at most


def test_randomized_eigenvalues_replicas_and_reproducibility(rng):
    small = rng.standard_normal((50, 10))
    assert spectra.randomized_eigenvalues(small, seed=0).shape == (50,)  # 10 < 100 values: 5 replicas
    conv = rng.standard_normal((9, 16, 8))
    assert spectra.randomized_eigenvalues(conv, seed=0).shape == (5 * 72,)
    big = rng.standard_normal((9, 64, 32))
    assert spectra.randomized_eigenvalues(big, seed=0).shape == (288,)
    assert spectra.randomized_eigenvalues(big, seed=0, replicas=2).shape == (576,)
    a = spectra.randomized_eigenvalues(big, seed=4, threads=1)
    np.testing.assert_array_equal(a, spectra.randomized_eigenvalues(big, seed=4, threads=2))
    assert not np.array_equal(a, spectra.randomized_eigenvalues(big, seed=5))
    f32 = spectra.randomized_eigenvalues(big.astype(np.float32), seed=4, precision="float32")
    assert f32.dtype == np.float32
    np.testing.assert_allclose(f32, a, rtol=1e-3, atol=1e-4 * a.max())


def test_randomization_metrics_match_reference(rng):
    for N, M, slices in [(300, 120, 1), (16, 8, 9)]:
        w = rng.standard_normal((slices, N, M))
        ev = np.sort(spectra.eigenvalues(w).ravel())
        pooled = spectra.randomized_eigenvalues(w, seed=10)
        fresh = spectra.randomized_eigenvalues(w, seed=11, replicas=1)
        ours = spectra.randomization_metrics(ev, pooled, N=N, M=M, single_rand_evals=fresh)
        ref = ww_randomization_metrics(ev, pooled, fresh, N, M)
        assert ours["rand_distance"] == ref["rand_distance"]
        assert ours["num_traps"] == ours["rand_num_spikes"] == ref["rand_num_spikes"]
        for key in ("max_rand_eval", "ww_softrank", "ww_maxdist", "rand_sigma_mp", "rand_mp_softrank",
                    "rand_W_scale", "rand_bulk_max", "rand_bulk_min"):
            assert ours[key] == pytest.approx(ref[key], rel=RTOL, abs=0), key


def test_randomization_metrics_of_a_zero_layer_do_not_crash():
    m = spectra.randomization_metrics(np.zeros(20), np.zeros(20), N=40, M=20)
    assert m["rand_mp_status"] == "failed" and math.isnan(m["rand_distance"]) and math.isnan(m["ww_softrank"])


def test_randomization_metrics_needs_one_replica_for_the_distance(rng):
    w = rng.standard_normal((40, 10))
    ev = spectra.eigenvalues(w)
    pooled = spectra.randomized_eigenvalues(w, seed=0)  # 5 replicas
    with pytest.raises(ValueError, match="single_rand_evals"):
        spectra.randomization_metrics(ev, pooled, N=40, M=10)
    m = spectra.randomization_metrics(ev, pooled, N=40, M=10,
                                      single_rand_evals=spectra.randomized_eigenvalues(w, seed=1, replicas=1))
    assert m["max_rand_eval"] == pooled.max()
