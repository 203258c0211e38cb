"""The opt-in ``fit_tests=`` columns of ``hts.analyze``: how good the power-law fit of a layer is.

- ``pl_pvalue``: the Clauset–Shalizi–Newman bootstrap p-value (``hts.goodness.power_law_pvalue``; R replicates,
  seeded by the analysis's ``seed``): small (<= 0.1) rules the power law out.
- ``R_<alt>``, ``p_<alt>`` for alt in exponential, stretched_exponential, lognormal, truncated_power_law: the
  normalised log-likelihood ratio of the power law against alt on the tail >= xmin and its p
  (``hts.likelihood_ratio``; Vuong's test, the nested χ² test for the truncated power law); R > 0 favours the
  power law.
- ``best_fit``: "power_law", unless an alternative is significantly better (R < 0 and p <= 0.05), checked in
  the order exponential, stretched exponential, lognormal, truncated power law (the first one wins). Like
  WeightWatcher's (unused) ``best_dist``, except that every alternative is compared with the power law
  (WeightWatcher, once the truncated power law wins, compares the others with it instead).
- ``fit_verdict``: the same in plain words, e.g. "a power law fits (p = 0.41)", "lognormal fits better
  (R = -2.3, p = 0.02)", "power law ruled out (p = 0.03)".

All NaN / "" when the layer's fit failed.
"""

from __future__ import annotations

import math

import numpy as np

from .goodness import power_law_pvalue
from .likelihood_ratio import ALTERNATIVES, compare_power_law

__all__ = ["fit_test_columns", "DEFAULT_REPLICATES"]

DEFAULT_REPLICATES = 1000


def _verdict(pvalue: float, best: str, tests: dict) -> str:
    if best != "power_law":
        t = tests[best]
        return f"{best.replace('_', ' ')} fits better (R = {t.R:.2g}, p = {t.p:.2g})"
    if pvalue <= 0.1:
        return f"power law ruled out (p = {pvalue:.2g})"
    return f"a power law fits (p = {pvalue:.2g})"


def fit_test_columns(evals: np.ndarray, xmin: float, *, replicates: int, seed: int) -> dict:
    """The columns above for one row: ``evals`` its (unnormalised) ESD, ``xmin`` the fitted xmin."""
    cols: dict = {"pl_pvalue": float("nan")}
    for alt in ALTERNATIVES:
        cols[f"R_{alt}"] = cols[f"p_{alt}"] = float("nan")
    cols["best_fit"] = cols["fit_verdict"] = ""
    if not (xmin > 0) or np.count_nonzero(evals >= xmin) < 2:
        return cols
    pv = power_law_pvalue(evals, replicates=replicates, seed=seed, threads=1)
    tests = compare_power_law(evals, xmin)
    cols["pl_pvalue"] = pv.p
    best = "power_law"
    for alt in ALTERNATIVES:
        t = tests[alt]
        cols[f"R_{alt}"], cols[f"p_{alt}"] = t.R, t.p
        if best == "power_law" and t.R < 0 and t.p <= 0.05:
            best = alt
    cols["best_fit"] = best
    cols["fit_verdict"] = _verdict(pv.p, best, tests) if not math.isnan(pv.p) else ""
    return cols
