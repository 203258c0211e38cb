"""Issue 17 part A item 1, the native kernel of the truncated power law (also run under ASan/UBSan by
test_sanitizers.py): ln Γ(s, z) against mpmath, a sample with a known answer, thread-count independence, bad
input. The fits against powerlaw 1.5 and WeightWatcher are in test_tpl.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hts import _core
from hts.tpl import fit_truncated_power_law, upper_gamma

mpmath = pytest.importorskip("mpmath", reason="the reference incomplete gamma function")
mpmath.mp.dps = 40


@settings(max_examples=300, deadline=None)
@given(a=st.floats(-25.0, 0.45), logz=st.floats(-12.0, 3.5))
def test_log_upper_gamma_matches_mpmath(a, logz):
    z = 10.0 ** logz
    ref = float(mpmath.log(mpmath.gammainc(a, z)))
    got = _core.log_upper_gamma(a, z)
    assert abs(got - ref) <= 1e-13 * max(1.0, abs(ref)), (a, z, got, ref)


@pytest.mark.parametrize("a", [0.0, -1e-13, -1.0, -2.0, -3.0000000001, -0.5, -7.5])
@pytest.mark.parametrize("z", [1e-300, 1e-8, 0.3, 0.999999, 1.0, 7.0, 900.0])
def test_log_upper_gamma_at_poles_and_edges(a, z):
    ref = float(mpmath.log(mpmath.gammainc(a, z)))
    assert _core.log_upper_gamma(a, z) == pytest.approx(ref, rel=1e-13, abs=1e-13)


def test_log_upper_gamma_outside_its_domain_is_nan():
    assert math.isnan(_core.log_upper_gamma(0.6, 1.0)) and math.isnan(_core.log_upper_gamma(-1.0, 0.0))
    assert math.isnan(_core.log_upper_gamma(-1.0, -2.0)) and math.isnan(_core.log_upper_gamma(math.nan, 1.0))
    assert upper_gamma(-2.0, 1000.0) == 0.0  # underflows to 0 as float(mpmath.gammainc(...)) does


def test_a_truncated_power_law_sample_gives_back_its_parameters():
    """x >= 1 drawn from x^-2.5 e^(-0.05 x) (rejection sampling, as powerlaw's generator): the fit at xmin = 1
    recovers alpha and Lambda within a few standard errors (n = 20000)."""
    rng = np.random.default_rng(11)
    alpha, Lambda, xmin, out = 2.5, 0.05, 1.0, []
    while len(out) < 20000:
        x = xmin - np.log(1 - rng.random(50000)) / Lambda
        out.extend(x[rng.random(x.size) < (x / xmin) ** -alpha])
    x = np.sort(np.array(out[:20000]))
    r = _core.tpl_scan(x, np.array([0], dtype=np.int64), 1)
    assert r["in_range"][0]
    assert r["alpha"][0] == pytest.approx(alpha, abs=0.05) and r["Lambda"][0] == pytest.approx(Lambda, rel=0.15)
    assert r["D"][0] < 0.015


def test_results_do_not_depend_on_the_thread_count():
    rng = np.random.default_rng(5)
    x = np.sort(rng.pareto(2.0, 400) + 1.0)
    idx = np.arange(x.size - 1, dtype=np.int64)
    for exact in (True, False):
        one, four = _core.tpl_scan(x, idx, 1, exact), _core.tpl_scan(x, idx, 4, exact)
        for k in one:
            np.testing.assert_array_equal(one[k], four[k])


@pytest.mark.parametrize("seed", range(4))
def test_the_pruned_scan_picks_the_same_fit(seed):
    """exact=False cuts KS scans short above a bound; the smallest D (in the domain) and its fit are exact, and
    every cut-short D is a lower bound above that minimum."""
    rng = np.random.default_rng(seed)
    w = rng.standard_t(3 + seed, size=(500, 250))
    x = np.linalg.eigvalsh(w.T @ w / 500)
    fast, full = fit_truncated_power_law(x), fit_truncated_power_law(x, curve=True)
    same = {k: v for k, v in fast.fit.__dict__.items() if k != "sigma"}
    assert same == {k: v for k, v in full.fit.__dict__.items() if k != "sigma"} and fast.Lambda == full.Lambda
    for k in ("alpha", "Lambda", "in_range"):
        np.testing.assert_array_equal(fast.candidates[k], full.candidates[k])
    D_fast, D_full, good = fast.candidates["D"], full.candidates["D"], full.candidates["in_range"]
    exact = D_fast == D_full
    assert np.all(D_fast[~exact] > full.fit.D) and np.all(D_fast[~exact] <= D_full[~exact])
    assert (~exact).sum() > 0.5 * good.sum()  # the pruning does prune


def test_bad_input_and_failures():
    with pytest.raises(ValueError, match="NaN"):
        fit_truncated_power_law([1.0, np.nan, 2.0])
    with pytest.raises(ValueError, match="ascending"):
        _core.tpl_scan(np.array([2.0, 1.0, 3.0]), np.array([0], dtype=np.int64), 1)
    with pytest.raises(ValueError, match="out of range"):
        _core.tpl_scan(np.array([1.0, 2.0]), np.array([1], dtype=np.int64), 1)
    with pytest.raises(ValueError, match="first of its value"):
        _core.tpl_scan(np.array([1.0, 2.0, 2.0, 3.0]), np.array([2], dtype=np.int64), 1)
    failed = fit_truncated_power_law([3.0, 3.0, 3.0])
    assert failed.fit.status == "failed" and math.isnan(failed.Lambda) and "candidate" in failed.fit.reason
    assert fit_truncated_power_law([1e-9, 1.0]).fit.status == "failed"
