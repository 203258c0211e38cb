"""The power-law fit of an ESD's tail (continuous MLE, xmin by the smallest KS distance)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .._native import _core
from .._threads import resolve_threads
from ._inputs import ArrayLike, _eigenvalue_vector


@dataclass(frozen=True)
class PowerLawFit:
    """A power-law fit p(λ) ∝ λ^(−alpha) for λ >= xmin of a layer's eigenvalues.

    Attributes
    ----------
    alpha : float
        Continuous maximum-likelihood exponent on the tail of m values >= xmin:
        alpha = 1 + m / Σ ln(λ_i / xmin) (small samples, n < 20: 1 + (m − 1) / Σ ln(λ_i / xmin)). NaN if failed.
    xmin : float
        The candidate (a data value) with the smallest KS distance D. NaN if failed.
    xmax : float
        The largest fitted eigenvalue (no upper cut is applied).
    D : float
        One-sided Kolmogorov–Smirnov distance max_k |1 − (λ_(k)/xmin)^(1−alpha) − k/m|, k = 0..m−1 over the
        sorted tail. NaN if failed.
    sigma : float
        Standard error of alpha: (alpha − 1) / √m. NaN if failed.
    num_pl_spikes : int
        Number of the given eigenvalues >= xmin (0 if failed).
    num_fit : int
        Number of eigenvalues fitted (those > ``evals_thresh``).
    tail : int
        m, the fitted values >= xmin.
    small_n : bool
        Whether the small-sample fitter was used (num_fit < 20).
    status : str
        ``"success"`` or ``"failed"``.
    reason : str
        Why the fit failed; empty on success.
    candidates : dict or None
        With ``curve=True``: arrays ``xmin``, ``alpha``, ``D`` for every candidate xmin.
    """

    alpha: float
    xmin: float
    xmax: float
    D: float
    sigma: float
    num_pl_spikes: int
    num_fit: int
    tail: int
    small_n: bool
    status: str
    reason: str = ""
    candidates: dict | None = None

    def to_dict(self) -> dict:
        """Plain, JSON-serialisable values (NaN becomes None; candidate arrays become lists)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, float) and math.isnan(value):
                out[key] = None
        if self.candidates is not None:
            out["candidates"] = {k: [None if math.isnan(x) else x for x in v.tolist()]
                                 for k, v in self.candidates.items()}
        return out


def fit_power_law(
    evals: ArrayLike,
    *,
    evals_thresh: float = 1e-5,
    max_candidates: int | None = None,
    curve: bool = False,
    threads: int | None = None,
) -> PowerLawFit:
    """Fit a power law to the tail of an ESD, choosing xmin by the smallest KS distance (WeightWatcher 0.7.7).

    The fitted data are the n eigenvalues > ``evals_thresh`` (an absolute threshold, as WeightWatcher's).
    For n >= 20 every sorted value but the largest is a candidate xmin (ties kept); each gets
    alpha = 1 + m / Σ_{λ>=xmin} ln(λ/xmin) and the KS distance D above (D = 1 when alpha <= 1); the first
    candidate with the smallest D wins. For n < 20 only tails of at least 8 values are candidates and alpha
    is bias-corrected, alpha = 1 + (m − 1) / Σ ln(λ/xmin). The scan is exact by default and runs natively,
    threaded over candidates, skipping a candidate as soon as its running distance exceeds the best so far.

    Parameters
    ----------
    evals : array_like, 1-D
        Eigenvalues, any order.
    evals_thresh : float
        Only eigenvalues above this are fitted.
    max_candidates : int, optional
        Score only this many candidates, evenly spaced over the sorted data (an approximation for n ≫ 10⁴);
        default: all of them (exact).
    curve : bool
        Also return alpha and D for every candidate in ``PowerLawFit.candidates`` (exact, no pruning: slower).
    threads : int, optional
        Native threads for the scan (large n only); the answer does not depend on it.

    Returns
    -------
    PowerLawFit
        ``status == "failed"`` (alpha etc. NaN, with a reason) when no fit is possible, e.g. fewer than two
        eigenvalues above the threshold. Never raises for data reasons other than NaN input.
    """
    arr = _eigenvalue_vector(evals, "fit_power_law")
    if np.isnan(arr).any():
        raise ValueError(f"fit_power_law: {int(np.isnan(arr).sum())} of {arr.size} eigenvalues are NaN")
    if max_candidates is not None and max_candidates < 2:
        raise ValueError(f"max_candidates must be >= 2 or None, got {max_candidates}")
    raw = _core.fit_power_law(
        arr,
        evals_thresh=float(evals_thresh),
        threads=resolve_threads(threads),
        max_candidates=0 if max_candidates is None else int(max_candidates),
        want_curve=bool(curve),
    )
    ok = raw["ok"]
    nan = float("nan")
    candidates = None
    if curve and "curve_D" in raw:
        candidates = {"xmin": raw["curve_xmin"], "alpha": raw["curve_alpha"], "D": raw["curve_D"]}
    return PowerLawFit(
        alpha=raw["alpha"] if ok else nan,
        xmin=raw["xmin"] if ok else nan,
        xmax=raw["xmax"] if raw["n_fit"] > 0 else nan,
        D=raw["D"] if ok else nan,
        sigma=raw["sigma"] if ok else nan,
        num_pl_spikes=raw["num_pl_spikes"] if ok else 0,
        num_fit=raw["n_fit"],
        tail=raw["tail"] if ok else 0,
        small_n=raw["small_n"],
        status="success" if ok else "failed",
        reason=raw["reason"],
        candidates=candidates,
    )
