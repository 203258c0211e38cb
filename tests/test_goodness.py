"""The Clauset–Shalizi–Newman bootstrap p-value (``hts.goodness.power_law_pvalue``).

Checked against an independent numpy loop (the same documented draws, fitted by tests/_reference.py's numpy
transcription of the fit), for bit-identity over thread counts, and on data with a known answer: a true
Pareto sample is not ruled out (large p), a uniform sample is (p ≈ 0).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from _reference import ww_fit_power_law
from hts.goodness import power_law_pvalue


def _numpy_replicate_D(x, xmin, alpha, tail, seed, r):
    """One replicate exactly as the module docstring states it, fitted by the numpy reference fitter."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, r])))
    n = x.size
    body = x[x < xmin]
    n_tail = int(rng.binomial(n, tail / n)) if body.size else n
    synth_tail = xmin * (1.0 - rng.random(n_tail)) ** (-1.0 / (alpha - 1.0))
    synth_body = body[rng.integers(0, body.size, n - n_tail)] if body.size else synth_tail[:0]
    return ww_fit_power_law(np.concatenate([synth_tail, synth_body]))["D"]


def _pareto(n, alpha, seed, xmin=2.0):
    rng = np.random.default_rng(seed)
    return xmin * (1 - rng.random(n)) ** (-1 / (alpha - 1))


def test_matches_an_independent_numpy_loop():
    rng = np.random.default_rng(11)
    x = np.concatenate([rng.lognormal(0.0, 0.4, 150), _pareto(60, 2.5, 12)])
    res = power_law_pvalue(x, replicates=25, seed=7, threads=2)
    f = res.fit
    ref = [_numpy_replicate_D(np.sort(x), f.xmin, f.alpha, f.tail, 7, r) for r in range(25)]
    np.testing.assert_allclose(res.D_replicates, ref, rtol=1e-9, atol=1e-12)
    assert res.p == np.count_nonzero(np.asarray(ref) >= res.D) / 25
    assert res.D == pytest.approx(ww_fit_power_law(x)["D"], rel=1e-9)


@pytest.mark.parametrize("threads", [1, 2, 3, 5])
def test_bit_identical_for_any_thread_count(threads):
    x = _pareto(300, 2.2, 3)
    base = power_law_pvalue(x, replicates=40, seed=2**64 - 1, threads=1)
    other = power_law_pvalue(x, replicates=40, seed=2**64 - 1, threads=threads)
    assert np.array_equal(base.D_replicates, other.D_replicates) and base.p == other.p
    assert not np.array_equal(base.D_replicates, power_law_pvalue(x, replicates=40, seed=0).D_replicates)


def test_known_answers():
    pareto = power_law_pvalue(_pareto(800, 2.5, 21), replicates=200, seed=1)
    assert pareto.p > 0.1, pareto.p  # a true power law is not ruled out
    uniform = power_law_pvalue(np.random.default_rng(4).random(800) + 1.0, replicates=200, seed=1)
    assert uniform.p < 0.05, uniform.p  # a bounded, flat sample is
    assert 0 < pareto.stderr < 0.05


def test_bad_input_and_failed_fits():
    with pytest.raises(ValueError, match="NaN"):
        power_law_pvalue(np.array([1.0, np.nan, 3.0]))
    with pytest.raises(ValueError, match="replicates"):
        power_law_pvalue(np.arange(1.0, 50.0), replicates=0)
    with pytest.raises(ValueError, match="seed"):
        power_law_pvalue(np.arange(1.0, 50.0), seed=-1)
    with pytest.raises(ValueError, match="1-D"):
        power_law_pvalue(np.ones((3, 3)))
    failed = power_law_pvalue(np.array([1e-7, 1.0]), replicates=5)
    assert math.isnan(failed.p) and failed.fit.status == "failed" and failed.D_replicates.shape == (5,)
