"""WeightWatcher 0.7.7's ``fix_fingers="xmin_peak"``: a power-law fit whose xmin is searched near the ESD's peak.

WeightWatcher (reference C.5) runs the ``powerlaw`` 1.5 package on the eigenvalues λ > 1e-5 with an xmin range
around the peak of the log-spectrum; hts computes the same numbers natively:

1. h = the 100-bin histogram of log10 λ (numpy's bins over [min, max]); p = 10^(left edge of the fullest bin,
   the first if several tie).
2. The xmin range is [lo, hi] = [min(a, b), max(a, b)] of (a, b) = (log10(0.95·p), xmin_max), xmin_max = 1.5·p
   by default. The lower end is WeightWatcher's quirk, kept: it is a *log10* value compared with eigenvalues,
   so in practice every value below xmin_max is a candidate.
3. The candidates are the distinct data values in [lo, hi] except the largest of them (``powerlaw``'s
   ``unique(...)[:-1]``). Each gets the continuous MLE alpha = 1 + m / Σ_{λ>=xmin} ln(λ/xmin) over its tail of
   m values (no small-sample correction: ``powerlaw`` has none) and the KS distance
   D = max_k |1 − (λ_(k)/xmin)^(1−alpha) − k/m| of ``spectra.fit_power_law``; the first smallest D wins.
   sigma = (alpha − 1)/√m. With no candidate in the range the fit fails (WeightWatcher: alpha −1).

The per-candidate scan is the native exact one of ``spectra.fit_power_law(curve=True)`` (all candidates,
threaded); samples below 20 values are scored here in numpy with the same formulas.
"""

from __future__ import annotations

import math

import numpy as np

from . import spectra

EVALS_THRESH = 1e-5

__all__ = ["fit_xmin_peak", "peak_xmin_range"]


def peak_xmin_range(nz: np.ndarray, xmin_max: float | None = None) -> tuple[float, float, float]:
    """(peak p, lo, hi) of the xmin search for the positive eigenvalues ``nz`` (steps 1–2 of the module doc)."""
    counts, edges = np.histogram(np.log10(nz), bins=100)
    peak = 10 ** edges[int(np.argmax(counts))]
    top = 1.5 * peak if xmin_max is None else float(xmin_max)
    a, b = math.log10(0.95 * peak), top
    return float(peak), min(a, b), max(a, b)


def _scores_small(x: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """alpha and D of the candidates x[idx] (ascending x), the standard formulas, in numpy."""
    alphas, ds = np.empty(idx.size), np.empty(idx.size)
    for j, i in enumerate(idx):
        tail = x[i:]
        m = tail.size
        s = float(np.sum(np.log(tail / x[i])))
        alpha = 1.0 + m / s if s > 0 else math.inf
        alphas[j] = alpha
        if alpha > 1.0 and math.isfinite(alpha):
            cdf = 1.0 - np.exp((1.0 - alpha) * (np.log(tail) - math.log(x[i])))
            ds[j] = float(np.max(np.abs(cdf - np.arange(m) / m)))
        else:
            ds[j] = 1.0
    return alphas, ds


def fit_xmin_peak(evals: np.ndarray, *, xmin_max: float | None = None) -> spectra.PowerLawFit:
    """The ``fix_fingers="xmin_peak"`` fit of a layer's eigenvalues (any order); see the module docstring.

    ``num_pl_spikes`` counts all of ``evals`` >= xmin (zeros included, as WeightWatcher); ``xmax`` is the
    largest eigenvalue. Never raises for data reasons: a fit that cannot be made has status "failed".
    """
    ev = np.asarray(evals, dtype=np.float64)
    if np.isnan(ev).any():
        raise ValueError(f"fit_xmin_peak: {int(np.isnan(ev).sum())} of {ev.size} eigenvalues are NaN")
    x = np.sort(ev[ev > EVALS_THRESH])
    nan = float("nan")

    def failed(reason: str) -> spectra.PowerLawFit:
        return spectra.PowerLawFit(alpha=nan, xmin=nan, xmax=float(x[-1]) if x.size else nan, D=nan, sigma=nan,
                                   num_pl_spikes=0, num_fit=int(x.size), tail=0, small_n=False,
                                   status="failed", reason=reason)

    if x.size < 2:
        return failed(f"xmin_peak: {x.size} eigenvalue(s) above {EVALS_THRESH}, need 2")
    _, lo, hi = peak_xmin_range(x, xmin_max)
    values, first = np.unique(x, return_index=True)
    keep = (values >= lo) & (values <= hi)
    idx = first[keep][:-1]  # powerlaw drops the largest candidate of the range
    if idx.size == 0:
        return failed(f"xmin_peak: no xmin candidate in [{lo:.6g}, {hi:.6g}]")
    if x.size >= 20:
        curve = spectra.fit_power_law(x, evals_thresh=0.0, curve=True).candidates
        alphas, ds = curve["alpha"][idx], curve["D"][idx]
    else:
        alphas, ds = _scores_small(x, idx)
    best = int(np.argmin(ds))
    i = int(idx[best])
    m = x.size - i
    alpha = float(alphas[best])
    return spectra.PowerLawFit(
        alpha=alpha, xmin=float(x[i]), xmax=float(x[-1]), D=float(ds[best]), sigma=(alpha - 1.0) / math.sqrt(m),
        num_pl_spikes=int(np.count_nonzero(ev >= x[i])), num_fit=int(x.size), tail=m, small_n=False,
        status="success")
