"""The fit of one layer: WeightWatcher's power law (optionally with ``fix_fingers="clip_xmax"`` or
``"xmin_peak"``) or truncated power law (``fit="TPL"`` / ``"E_TPL"``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import spectra
from .xmin_peak import fit_xmin_peak

FIX_FINGERS = (None, "clip_xmax", "xmin_peak")
FITS = ("PL", "TPL", "E_TPL")
_FIT_NAMES = {"pl": "PL", "power_law": "PL", "tpl": "TPL", "truncated_power_law": "TPL", "e_tpl": "E_TPL"}


def normalize_fit(fit: str, fix_fingers: str | None) -> str:
    """WeightWatcher's fit names ('PL', 'TPL', 'E_TPL', 'power_law', 'truncated_power_law'; any case) -> one of
    FITS. ``fit="TPL"`` with ``fix_fingers="xmin_peak"`` is E_TPL (as in WeightWatcher); a TPL fit with
    ``fix_fingers="clip_xmax"`` is refused (WeightWatcher itself warns that the two cannot be combined)."""
    name = _FIT_NAMES.get(fit.lower()) if isinstance(fit, str) else None
    if name is None:
        raise ValueError(f"fit must be one of {FITS} (or 'power_law', 'truncated_power_law'), got {fit!r}")
    if name != "PL" and fix_fingers == "clip_xmax":
        raise ValueError(f"fit={fit!r} cannot be combined with fix_fingers='clip_xmax'")
    if name == "TPL" and fix_fingers == "xmin_peak":
        name = "E_TPL"
    return name


@dataclass(frozen=True)
class LayerFit:
    """The fit reported for a layer, plus the clip_xmax bookkeeping when asked for."""

    fit: spectra.PowerLawFit
    raw_alpha: float = float("nan")  # alpha of the unclipped fit (clip_xmax)
    num_fingers: int = 0  # WeightWatcher's count: one less than the eigenvalues removed
    fingers_removed: int = 0  # eigenvalues actually removed from the top
    Lambda: float = float("nan")  # the truncated power law's cut-off rate (fit="TPL"/"E_TPL")


def fit_layer(
    evals: np.ndarray, *, fix_fingers: str | None = None, max_fingers: int = 10, finger_thresh: float = 1.0,
    xmin_max: float | None = None, fit: str = "PL",
) -> LayerFit:
    """Fit the layer's sorted eigenvalues (WeightWatcher 0.7.7 semantics, see ``spectra.fit_power_law``).

    ``fix_fingers="clip_xmax"`` (reference C.5): fit all eigenvalues > 1e-5 (``raw_alpha``), then refit with
    the top idx = 2, 3, …, max_fingers−1 values removed; the first refit whose alpha drops by more than
    ``finger_thresh`` below the raw alpha is reported, with ``num_fingers = idx − 1`` as WeightWatcher counts;
    the search stops when a refit's alpha is <= 2 (then the raw fit is kept). ``num_pl_spikes`` still counts
    every eigenvalue >= xmin. hts stops the search (keeping the raw fit) when too few values are left to fit,
    where WeightWatcher fails the layer.

    ``fix_fingers="xmin_peak"`` (reference C.5): xmin searched only up to ``xmin_max`` (default 1.5 × the peak
    of the log-spectrum histogram), as WeightWatcher through ``powerlaw`` 1.5; see ``hts.xmin_peak``.

    ``fit="TPL"`` / ``"E_TPL"``: the truncated power law x^(−alpha) e^(−Lambda x) (``hts.tpl``), alpha its
    exponent, ``Lambda`` set, sigma NaN; E_TPL searches xmin in the xmin_peak range.
    """
    fit = normalize_fit(fit, fix_fingers)
    if fit != "PL":
        from .tpl import fit_truncated_power_law

        t = fit_truncated_power_law(evals, xmin_peak=fit == "E_TPL", xmin_max=xmin_max)
        return LayerFit(t.fit, Lambda=t.Lambda)
    if fix_fingers == "xmin_peak":
        return LayerFit(fit_xmin_peak(evals, xmin_max=xmin_max))
    raw = spectra.fit_power_law(evals, threads=1)
    if fix_fingers is None:
        return LayerFit(raw)
    if fix_fingers != "clip_xmax":
        raise ValueError(f"fix_fingers must be one of {FIX_FINGERS}, got {fix_fingers!r}")
    if raw.status != "success":
        return LayerFit(raw, raw_alpha=raw.alpha)
    nz = np.sort(evals[evals > 1e-5])
    for idx in range(2, max_fingers):
        if nz.size - idx < 2:
            break
        clipped = spectra.fit_power_law(nz[:-idx], threads=1)
        if clipped.status != "success":
            break
        if clipped.alpha + finger_thresh < raw.alpha:
            spikes = int(np.count_nonzero(evals >= clipped.xmin))
            reported = spectra.PowerLawFit(**{**clipped.__dict__, "num_pl_spikes": spikes})
            return LayerFit(reported, raw_alpha=raw.alpha, num_fingers=idx - 1, fingers_removed=idx)
        if clipped.alpha <= 2.0:
            break
    return LayerFit(raw, raw_alpha=raw.alpha)
