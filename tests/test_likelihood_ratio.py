"""Vuong likelihood-ratio tests (``hts.likelihood_ratio.compare_power_law``) against powerlaw 1.5's
``Fit(x, xmin=...).distribution_compare("power_law", alt, normalized_ratio=True)`` (to 1e-6 relative; measured
~1e-12) on synthetic and real (MiniLM) spectra, and on data with a known answer."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest

from hts import spectra
from hts.likelihood_ratio import ALTERNATIVES, _log_erfc, _ll_lognormal, compare_power_law


def _powerlaw_compare(x, xmin):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        powerlaw = pytest.importorskip("powerlaw", reason="needs the compare extra (powerlaw<2)")
        if not powerlaw.__version__.startswith("1."):
            pytest.skip(f"parity is defined against powerlaw 1.x, found {powerlaw.__version__}")
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            fit = powerlaw.Fit(x, xmin=xmin)
            out = {alt: fit.distribution_compare("power_law", alt, normalized_ratio=True) for alt in ALTERNATIVES}
            return out, (float(fit.lognormal.mu), float(fit.lognormal.sigma))


def _underflows(x, xmin, mu, s):
    """Whether powerlaw's lognormal density or normaliser leaves the normal doubles at (mu, s)."""
    lx = np.log(x[x >= xmin])
    return (np.log(xmin) - mu) / (np.sqrt(2) * s) >= 20 or (-((lx - mu) ** 2) / (2 * s * s)).min() <= -650


def _check(x, xmin):
    mine = compare_power_law(x, xmin)
    theirs, (mu, s) = _powerlaw_compare(x, xmin)
    for alt in ALTERNATIVES:
        if alt == "lognormal" and _underflows(x, xmin, mu, s):
            # powerlaw's doubles underflow (difference in docs): hts's fit must be at least as likely, exactly
            tail = np.sort(x[x >= xmin])
            exact = np.sum(-np.log(tail) - (np.log(tail) - mu) ** 2 / (2 * s * s)
                           - (_log_erfc((np.log(xmin) - mu) / (np.sqrt(2) * s)) - 0.5 * np.log(2 / (np.pi * s * s))))
            assert np.sum(_ll_lognormal(mine[alt].params, tail, xmin)) >= exact - 1e-9 * abs(exact)
            continue
        R, p = theirs[alt]
        # The truncated power law with Lambda -> 0 is the power law itself: R is then a difference of two
        # nearly equal sums (MiniLM layer 1: R = 8e-5, Lambda = 2e-10), i.e. rounding noise, so it is compared
        # to 1e-6 absolute as well (measured 2e-10).
        tol = 1e-6 if alt == "truncated_power_law" else 1e-12
        assert mine[alt].R == pytest.approx(float(R), rel=1e-6, abs=tol), alt
        assert mine[alt].p == pytest.approx(float(p), rel=1e-6, abs=tol if tol > 1e-12 else 1e-15), alt
    return mine


@pytest.mark.parametrize("kind", ["pareto", "lognormal", "exponential", "weibull"])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_powerlaw_on_synthetic_tails(kind, seed):
    rng = np.random.default_rng(seed)
    x = {"pareto": lambda: 2 * (1 - rng.random(400)) ** (-1 / 1.5),
         "lognormal": lambda: rng.lognormal(0, 1, 400),
         "exponential": lambda: rng.exponential(1, 400) + 0.1,
         "weibull": lambda: rng.weibull(0.6, 400) + 0.01}[kind]()
    _check(x, spectra.fit_power_law(x).xmin)


def test_matches_powerlaw_on_real_layers():
    import _models

    try:
        sd = _models.minilm_state_dict()
    except ImportError as err:
        pytest.skip(f"minilm: {err}")
    names = [k for k in sd if k.endswith("intermediate.dense.weight")][:2] + ["embeddings.word_embeddings.weight"][:0]
    assert names
    for key in names:
        w = sd[key].detach().numpy() if hasattr(sd[key], "detach") else np.asarray(sd[key])
        ev = spectra.eigenvalues(w)
        _check(ev, spectra.fit_power_law(ev).xmin)


def test_known_answers():
    rng = np.random.default_rng(7)
    pareto = 1.0 * (1 - rng.random(5000)) ** (-1 / 1.5)
    res = compare_power_law(pareto, 1.0)
    assert res["exponential"].verdict == "power law" and res["exponential"].R > 3
    logn = rng.lognormal(0, 1, 20000)
    res = compare_power_law(logn, float(np.median(logn)))
    assert res["lognormal"].R < 0 and res["lognormal"].p < 0.01 and res["lognormal"].verdict == "lognormal"


def test_known_answers_truncated_power_law():
    """A true x^-2 e^(-0.1 x) tail: the truncated power law wins clearly, with its parameters; a pure Pareto
    tail: the nested test finds nothing (Lambda ~ 0, p large)."""
    rng = np.random.default_rng(3)
    out = []
    while len(out) < 5000:  # rejection sampling: exponential proposals above xmin = 1, accepted w.p. x^-2
        x = 1.0 - np.log(1 - rng.random(20000)) / 0.1
        out.extend(x[rng.random(x.size) < x ** -2.0])
    res = compare_power_law(np.array(out[:5000]), 1.0)["truncated_power_law"]
    assert res.R < -3 and res.p < 1e-6 and res.verdict == "truncated_power_law"
    assert res.params[0] == pytest.approx(2.0, abs=0.1) and res.params[1] == pytest.approx(0.1, rel=0.2)
    pareto = 1.0 * (1 - rng.random(5000)) ** (-1 / 1.5)
    res = compare_power_law(pareto, 1.0)["truncated_power_law"]
    assert res.p > 0.05 and res.verdict == "undecided" and res.params[1] < 1e-3


def test_bad_input():
    with pytest.raises(ValueError, match="need 2"):
        compare_power_law(np.array([1.0, 2.0]), 5.0)
    with pytest.raises(ValueError, match="xmin"):
        compare_power_law(np.array([1.0, 2.0]), 0.0)
    with pytest.raises(ValueError, match="unknown"):
        compare_power_law(np.arange(1.0, 10.0), 1.0, alternatives=("gamma",))
    with pytest.raises(ValueError, match="NaN"):
        compare_power_law(np.array([1.0, np.nan, 3.0]), 1.0)
