"""hts.spectra.spectrum_metrics, log_alpha_norm and frobenius_norm against the numpy reference."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from _reference import ww_metrics, ww_rank_loss
from hypothesis import given
from hypothesis import strategies as st

from hts import spectra

RTOL = 1e-9


def check_against_reference(evals: np.ndarray, N: int, alpha: float) -> None:
    got = spectra.spectrum_metrics(evals, N=N, alpha=alpha)
    ref = ww_metrics(evals, N, alpha)
    assert got.num_evals == evals.size
    assert got.matrix_rank == ref["matrix_rank"]
    assert got.weak_rank_loss == ref["weak_rank_loss"]
    for ours, theirs in [
        ("norm", "norm"),
        ("log_norm", "log_norm"),
        ("lambda_max", "spectral_norm"),
        ("log_spectral_norm", "log_spectral_norm"),
        ("stable_rank", "stable_rank"),
        ("entropy", "entropy"),
        ("log_alpha_norm", "log_alpha_norm"),
        ("alpha_weighted", "alpha_weighted"),
    ]:
        assert getattr(got, ours) == pytest.approx(ref[theirs], rel=RTOL, abs=1e-12), ours
    assert got.sv_max == pytest.approx(math.sqrt(evals.max()), rel=1e-15)
    assert got.sv_min == pytest.approx(math.sqrt(evals.min()), rel=1e-15)
    assert got.rank_loss == ww_rank_loss(np.sqrt(evals), N)


@given(
    n=st.integers(1, 120),
    m=st.integers(1, 120),
    rank=st.integers(1, 120),
    df=st.sampled_from([None, 2.5, 4.0]),
    scale=st.sampled_from([1e-4, 1.0, 1e3]),
    alpha=st.floats(1.05, 9.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_metrics_match_reference(n, m, rank, df, scale, alpha, seed):
    rng = np.random.default_rng(seed)
    r = min(rank, n, m)
    draw = (lambda s: rng.standard_normal(s)) if df is None else (lambda s: rng.standard_t(df, size=s))
    w = scale * (draw((n, r)) @ draw((r, m)))
    evals = spectra.eigenvalues(w)
    check_against_reference(evals, max(n, m), alpha)


def test_metrics_of_pooled_conv_slices(rng):
    stack = rng.standard_normal((9, 64, 32)) * 0.1
    evals = np.sort(spectra.eigenvalues(stack).ravel() * 0.5)
    check_against_reference(evals, 64, 3.1)


def test_without_alpha_the_alpha_metrics_are_nan(rng):
    got = spectra.spectrum_metrics(spectra.eigenvalues(rng.standard_normal((20, 10))), N=20)
    assert math.isnan(got.log_alpha_norm) and math.isnan(got.alpha_weighted)
    assert math.isfinite(got.log_norm)


def test_log_alpha_norm_does_not_overflow():
    evals = np.array([1e3, 5e4, 1e5])
    alpha = 80.0  # 1e5**80 = 1e400 overflows float64
    with np.errstate(over="ignore"):
        assert not np.isfinite(np.sum(evals**alpha))
    expected = alpha * 5 + math.log10(1 + 0.5**alpha + 0.01**alpha)
    assert spectra.log_alpha_norm(evals, alpha) == pytest.approx(expected, rel=1e-14)


def test_log_alpha_norm_edge_cases():
    assert spectra.log_alpha_norm(np.zeros(4), 2.0) == -math.inf
    assert math.isnan(spectra.log_alpha_norm(np.ones(4), math.nan))
    assert spectra.log_alpha_norm(np.array([0.0, 0.0, 4.0]), 2.5) == pytest.approx(2.5 * math.log10(4.0))


def test_zero_spectrum_metrics_are_json_safe():
    got = spectra.spectrum_metrics(np.zeros(5), N=5, alpha=2.0)
    assert got.norm == 0 and got.log_norm == -math.inf and math.isnan(got.stable_rank)
    assert got.matrix_rank == 0 and got.weak_rank_loss == 5
    text = json.dumps(got.to_dict(), allow_nan=False)
    assert '"log_norm": null' in text


def test_metrics_input_validation():
    with pytest.raises(ValueError, match="no eigenvalues"):
        spectra.spectrum_metrics(np.array([]), N=3)
    with pytest.raises(ValueError, match=">= 0"):
        spectra.spectrum_metrics(np.array([1.0, -2.0]), N=3)
    with pytest.raises(TypeError, match="1-D"):
        spectra.spectrum_metrics(np.ones((2, 2)), N=3)


@given(
    shape=st.sampled_from([(1, 1), (7, 3), (3, 7), (4, 5, 6)]),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**32 - 1),
)
def test_frobenius_norm_matches_numpy_and_eigenvalues(shape, dtype, seed):
    w = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    expected = np.sqrt(np.sum(w.astype(np.float64) ** 2))
    assert spectra.frobenius_norm(w) == pytest.approx(expected, rel=1e-13)
    assert spectra.frobenius_norm(np.swapaxes(w, -1, -2)) == pytest.approx(expected, rel=1e-13)
    assert spectra.frobenius_norm(w) ** 2 == pytest.approx(float(np.sum(spectra.eigenvalues(w))), rel=1e-10)


def test_frobenius_norm_rejects_non_finite():
    with pytest.raises(ValueError, match="layer 'emb'"):
        spectra.frobenius_norm(np.array([[1.0, np.inf]]), name="emb")
