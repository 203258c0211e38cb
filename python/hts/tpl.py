"""The truncated power law (WeightWatcher 0.7.7's ``fit="TPL"`` and ``fit="E_TPL"``), natively.

The density on x >= xmin (the seed paper's eq. 3; ``powerlaw`` 1.5's ``Truncated_Power_Law``) is

    p(x) = x^(−alpha) e^(−Lambda x) · Lambda^(1−alpha) / Γ(1−alpha, Lambda·xmin),   alpha > 1, Lambda > 0,

Γ(s, z) = ∫_z^∞ t^(s−1) e^(−t) dt the upper incomplete gamma function (its order s = 1 − alpha is negative: hts
computes ln Γ by a pole-free series below z = 1 and Legendre's continued fraction above, ``_core.log_upper_gamma``,
~1e-14 relative; ``powerlaw`` calls mpmath). Its CDF is F(x) = 1 − Γ(1−alpha, Lambda x)/Γ(1−alpha, Lambda xmin).

WeightWatcher runs ``powerlaw.Fit(λ, xmin_distribution="truncated_power_law")`` on the eigenvalues λ > 1e-5 and
reports that fit's xmin, D and its TPL alpha and Lambda. hts computes the same numbers:

1. candidates xmin: the distinct values except the largest (``fit="E_TPL"``: only those in WeightWatcher's
   xmin_peak range, ``hts.xmin_peak.peak_xmin_range``);
2. at each, (alpha, Lambda) maximise Σ ln p(x_i) over the tail x_i >= xmin by Nelder–Mead from the start
   (1 + m/Σ ln(x_i/xmin), 1/mean(x_i)) — scipy ``fmin``'s algorithm and defaults (xatol = fatol = 1e-4, 400
   iterations), transcribed step for step; parameters outside the domain give every point the likelihood 1e-307;
3. D = max over the tail's distinct values of |F(x) − ECDF(x)| (the lower-step ECDF of the tail; scans that
   cannot give the smallest D are cut short, see ``fit_truncated_power_law``);
4. the xmin with the smallest D among fits in the domain (``powerlaw``'s rule, also when none is) is reported.

sigma is NaN (``powerlaw`` has none for this law; WeightWatcher reports NaN too). The scan over candidates runs in
C++ with the GIL released, one candidate per task: the result does not depend on the thread count.
Agreement with ``powerlaw`` 1.5: the same optimizer path up to rounding, so alpha and Lambda agree to the
optimizer's tolerance (≈1e-4; in practice ~1e-9 where the paths coincide), D to ~1e-12.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import _core, spectra
from .xmin_peak import EVALS_THRESH, peak_xmin_range

__all__ = ["TruncatedPowerLawFit", "fit_truncated_power_law", "upper_gamma"]


def upper_gamma(s: float, z: float) -> float:
    """Γ(s, z) = ∫_z^∞ t^(s−1) e^(−t) dt for s < 0.5, z > 0 (NaN outside; inf/0 beyond the double range)."""
    return math.exp(_core.log_upper_gamma(float(s), float(z)))


@dataclass(frozen=True)
class TruncatedPowerLawFit:
    """A truncated-power-law fit (see the module docstring).

    ``fit`` carries the columns WeightWatcher shares with the power-law fit (alpha = the TPL alpha, xmin, xmax,
    D, sigma = NaN, num_pl_spikes, status); ``Lambda`` is the exponential cut-off rate (WeightWatcher's column
    name). ``candidates`` has arrays xmin, alpha, Lambda, D, in_range for every xmin tried.
    """

    fit: spectra.PowerLawFit
    Lambda: float
    candidates: dict


def fit_truncated_power_law(
    evals, *, xmin_peak: bool = False, xmin_max: float | None = None, threads: int = 1, curve: bool = False
) -> TruncatedPowerLawFit:
    """Fit the truncated power law to a layer's eigenvalues (any order), as WeightWatcher 0.7.7's
    ``fit="TPL"`` (``xmin_peak=False``) or ``fit="E_TPL"`` (``xmin_peak=True``, with ``xmin_max`` as there).

    ``candidates["D"]`` is exact for every candidate only with ``curve=True``; by default the KS scan of a
    candidate stops once it exceeds a bound known to be above the minimum (the D of ~64 evenly spread
    candidates), which changes no result (the same xmin, alpha, Lambda, D) and is ~10× faster on 4000 values.

    Never raises for data reasons (a fit that cannot be made has status "failed"); ValueError for NaN input.
    """
    ev = np.asarray(evals, dtype=np.float64).ravel()
    if np.isnan(ev).any():
        raise ValueError(f"fit_truncated_power_law: {int(np.isnan(ev).sum())} of {ev.size} eigenvalues are NaN")
    x = np.sort(ev[ev > EVALS_THRESH])
    nan = float("nan")
    empty = {k: np.empty(0) for k in ("xmin", "alpha", "Lambda", "D")} | {"in_range": np.empty(0, bool)}

    def failed(reason: str) -> TruncatedPowerLawFit:
        f = spectra.PowerLawFit(alpha=nan, xmin=nan, xmax=float(x[-1]) if x.size else nan, D=nan, sigma=nan,
                                num_pl_spikes=0, num_fit=int(x.size), tail=0, small_n=False, status="failed",
                                reason=reason)
        return TruncatedPowerLawFit(f, nan, empty)

    if x.size < 2:
        return failed(f"TPL: {x.size} eigenvalue(s) above {EVALS_THRESH}, need 2")
    if np.isinf(x[-1]):
        return failed("TPL: eigenvalues contain Inf")
    values, first = np.unique(x, return_index=True)
    if xmin_peak:
        _, lo, hi = peak_xmin_range(x, xmin_max)
        keep = (values >= lo) & (values <= hi)
        values, first = values[keep], first[keep]
    idx = first[:-1].astype(np.int64)  # powerlaw never tries the largest value
    if idx.size == 0:
        return failed("TPL: no xmin candidate" + (f" in [{lo:.6g}, {hi:.6g}]" if xmin_peak else ""))
    r = _core.tpl_scan(x, idx, threads, curve)
    D, good = r["D"], r["in_range"]
    if good.all() or not good.any():  # powerlaw's selection, numpy's argmin (NaN first) included
        best = int(np.argmin(D))
    else:
        best = int(np.ma.masked_array(D, mask=~good).argmin())
    i = int(idx[best])
    xmin = float(x[i])
    status, reason = "success", ""
    if not math.isfinite(r["alpha"][best]):
        status, reason = "failed", "TPL: the fit did not converge to a finite alpha"
    f = spectra.PowerLawFit(
        alpha=float(r["alpha"][best]), xmin=xmin, xmax=float(x[-1]), D=float(D[best]), sigma=nan,
        num_pl_spikes=int(np.count_nonzero(ev >= xmin)), num_fit=int(x.size), tail=int(x.size - i),
        small_n=False, status=status, reason=reason)
    cand = {"xmin": x[idx], "alpha": r["alpha"], "Lambda": r["Lambda"], "D": D, "in_range": good}
    return TruncatedPowerLawFit(f, float(r["Lambda"][best]), cand)
