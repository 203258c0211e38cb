"""Series statistics (hts.report.stats) against scipy.stats and numpy on small cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hts.report.stats import kendall_tau, ols, spearman_rho

scipy_stats = pytest.importorskip("scipy.stats", reason="scipy (the test extra) is the reference")

# Small series with ties, as accuracies and metrics rounded to a few digits have them.
values = st.lists(st.integers(-6, 6).map(lambda v: v / 2), min_size=3, max_size=12)


def _pairs(draw_x, draw_y):
    n = min(len(draw_x), len(draw_y))
    return np.array(draw_x[:n], float), np.array(draw_y[:n], float)


@given(values, values)
def test_kendall_tau_b_matches_scipy(xs, ys):
    x, y = _pairs(xs, ys)
    ref = scipy_stats.kendalltau(x, y).statistic
    ours = kendall_tau(x, y)
    if math.isnan(ref):
        assert math.isnan(ours)
    else:
        assert ours == pytest.approx(ref, abs=1e-12)


@given(values, values)
def test_spearman_rho_matches_scipy(xs, ys):
    x, y = _pairs(xs, ys)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        assert math.isnan(spearman_rho(x, y))
        return
    ref = scipy_stats.spearmanr(x, y).statistic
    assert spearman_rho(x, y) == pytest.approx(ref, abs=1e-12)


@given(values, values)
def test_ols_matches_linregress(xs, ys):
    x, y = _pairs(xs, ys)
    fit = ols(x, y)
    if np.ptp(x) == 0:
        assert math.isnan(fit.slope)
        return
    ref = scipy_stats.linregress(x, y)
    assert fit.slope == pytest.approx(ref.slope, abs=1e-9)
    assert fit.intercept == pytest.approx(ref.intercept, abs=1e-9)
    resid = y - (ref.intercept + ref.slope * x)
    assert fit.rmse == pytest.approx(np.sqrt(np.mean(resid**2)), abs=1e-9)
    if np.ptp(y) > 0:
        assert fit.r2 == pytest.approx(ref.rvalue**2, abs=1e-9)  # simple regression: R² = r²
    assert fit.n == x.size


def test_known_values():
    x = [1.0, 2.0, 3.0, 4.0]
    fit = ols(x, [3.0, 5.0, 7.0, 9.0])
    assert (fit.slope, fit.intercept, fit.rmse, fit.r2) == pytest.approx((2.0, 1.0, 0.0, 1.0))
    assert kendall_tau(x, [4, 3, 2, 1]) == -1.0
    assert spearman_rho(x, [1, 2, 3, 4]) == pytest.approx(1.0)
    # one discordant pair of six: (5 - 1) / 6
    assert kendall_tau(x, [1, 3, 2, 4]) == pytest.approx(4 / 6)


def test_non_finite_pairs_are_dropped():
    x = [1.0, 2.0, float("nan"), 3.0, 4.0]
    y = [1.0, 2.0, 100.0, 3.0, float("inf")]
    assert ols(x, y).n == 3
    assert kendall_tau(x, y) == 1.0
    assert spearman_rho(x, y) == pytest.approx(1.0)


def test_undefined_cases_give_nan():
    assert math.isnan(ols([1.0], [2.0]).slope)
    assert math.isnan(ols([1.0, 1.0], [2.0, 3.0]).r2)
    assert math.isnan(kendall_tau([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    assert math.isnan(spearman_rho([1.0], [1.0]))
    with pytest.raises(ValueError, match="differ in length"):
        ols([1.0, 2.0], [1.0])
