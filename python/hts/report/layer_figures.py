"""WeightWatcher-style per-layer figures (``hts report --savefig DIR``, ``save_layer_figures``).

For every analysed matrix (each slice of a conv layer), up to six PNG/SVG files:

``esd``
    the ESD on log-log axes with the power-law fit from xmin (``plots.esd``);
``esd-linear``
    the ESD on linear axes: the density of λ on ``bins`` equal-width bins, xmin marked;
``ks-distance``
    the KS distance D(xmin) of the fit for every candidate xmin, the chosen one marked (``plots.ks_distance``);
``alpha-vs-xmin``
    the MLE α(xmin) = 1 + m / Σ ln(λᵢ/xmin) over the same candidates, the chosen (xmin, α) marked;
``randomized``
    the ESDs of W and of its element-shuffled copy on log-log axes with a line at the largest shuffled
    eigenvalue λ_max^rand (only when the analysis was made with ``randomize=True``);
``mp-fit``
    the ESD on linear axes with the Marchenko–Pastur bulk density (the analysis' ``mp_fit`` columns, or a fit
    made here with ``spectra.marchenko_pastur_fit``).

Two more on request (``figures=FIGURES + DELTA_FIGURES``; WeightWatcher's ``deltas=True``):

``deltas``
    the gaps Δᵢ = λᵢ₊₁ − λᵢ between consecutive eigenvalues, log10 Δᵢ against i, a line at xmin's index;
``level-stats``
    the density of log10 Δᵢ (level statistics; WeightWatcher's ``level-stats``).
"""

from __future__ import annotations

import logging
import math
import os
import re
from pathlib import Path

import numpy as np

from .. import spectra
from . import plots

__all__ = ["DELTA_FIGURES", "FIGURES", "alpha_vs_xmin", "deltas", "esd_linear", "level_statistics", "mp_fit",
           "randomized_esd", "save_layer_figures"]

logger = logging.getLogger("hts")

FIGURES = ("esd", "esd-linear", "ks-distance", "alpha-vs-xmin", "randomized", "mp-fit")
#: The level-statistics figures, drawn only when asked for (WeightWatcher draws them with ``deltas=True``).
DELTA_FIGURES = ("deltas", "level-stats")


def _positive(analysis, row: dict, randomized: bool = False) -> np.ndarray:
    ev = analysis.esd(row["layer_id"], row.get("slice_id"), randomized=randomized)
    pos = ev[ev > 0]
    if pos.size < 2:
        raise ValueError(f"layer {row['longname']!r}: fewer than two positive eigenvalues to plot")
    return pos


def _linear_hist(ax, pos: np.ndarray, bins: int | None, **style) -> np.ndarray:
    bins = bins or int(np.clip(2 * math.sqrt(pos.size), 10, 80))
    hi = pos.max() if pos.max() > pos.min() else pos.min() * 1.01
    edges = np.linspace(pos.min(), hi, bins + 1)
    counts, _ = np.histogram(pos, bins=edges)
    ax.stairs(counts / (pos.size * np.diff(edges)), edges, **style)
    return edges


def esd_linear(analysis, layer, *, slice_id: int | None = None, bins: int | None = None,
               path: str | os.PathLike | None = None):
    """The layer's ESD on linear axes (density of λ on equal-width bins), xmin marked."""
    row = plots._layer_row(analysis, layer, slice_id)
    pos = _positive(analysis, row)
    fig = plots._figure()
    ax = fig.add_subplot()
    _linear_hist(ax, pos, bins, fill=True, alpha=0.45, color="C0", label=f"ESD ({pos.size} eigenvalues)")
    if plots._finite(row.get("xmin")):
        ax.axvline(row["xmin"], color="C1", linestyle="--", linewidth=1, label=f"xmin = {row['xmin']:.3g}")
    ax.set_xlabel("eigenvalue λ of WᵀW")
    ax.set_ylabel("density p(λ)")
    ax.set_title(f"{plots._layer_title(row)}: ESD, linear axes")
    ax.legend()
    return plots._finish(fig, path)


def alpha_vs_xmin(analysis, layer, *, slice_id: int | None = None, path: str | os.PathLike | None = None):
    """The power-law MLE α for every candidate xmin (the scan the analysis made), the chosen one marked."""
    row = plots._layer_row(analysis, layer, slice_id)
    ev = analysis.esd(row["layer_id"], row.get("slice_id"))
    curve = plots.candidate_curve(analysis, row, ev)  # the truncated power law's with fit="TPL"/"E_TPL"
    fig = plots._figure()
    ax = fig.add_subplot()
    ax.plot(curve["xmin"], curve["alpha"], color="C0", linewidth=1.2, marker=".", markersize=3, label="α(xmin)")
    searched = plots.xmin_search_range(analysis, row, ev)
    if searched is not None:
        ax.axvspan(*searched, color="C2", alpha=0.15, label="xmin_peak search range")
    if plots._finite(row.get("xmin")) and plots._finite(row.get("alpha")):
        ax.axvline(row["xmin"], color="C1", linestyle="--", linewidth=1, label=f"chosen xmin = {row['xmin']:.3g}")
        ax.plot([row["xmin"]], [row["alpha"]], "o", color="C1", label=f"α = {row['alpha']:.2f}")
    ax.set_xscale("log")
    ax.set_xlabel("candidate xmin (eigenvalue λ)")
    ax.set_ylabel("α (power-law exponent)")
    ax.set_title(f"{plots._layer_title(row)}: α against xmin")
    ax.legend()
    return plots._finish(fig, path)


def randomized_esd(analysis, layer, *, slice_id: int | None = None, bins: int | None = None,
                   path: str | os.PathLike | None = None):
    """The ESDs of W and of its element-shuffled copy (log-log), a line at λ_max of the shuffled ESD.

    Eigenvalues of W to the right of that line are the correlations training put in (the rand_distance and
    num_traps columns measure them). Needs an analysis made with ``randomize=True``.
    """
    row = plots._layer_row(analysis, layer, slice_id)
    pos = _positive(analysis, row)
    try:
        rand = _positive(analysis, row, randomized=True)
    except KeyError:
        raise ValueError("the randomized ESD needs an analysis made with randomize=True") from None
    lo, hi = min(pos.min(), rand.min()), max(pos.max(), rand.max())
    bins = bins or int(np.clip(2 * math.sqrt(pos.size), 10, 80))
    edges = np.logspace(math.log10(lo), math.log10(hi if hi > lo else lo * 1.01), bins + 1)
    fig = plots._figure()
    ax = fig.add_subplot()
    ax.stairs(plots._density(pos, edges), edges, fill=True, alpha=0.45, color="C0", label="ESD of W")
    ax.stairs(plots._density(rand, edges), edges, color="C3", linewidth=1.2, label="ESD of shuffled W")
    ax.axvline(rand.max(), color="C3", linestyle="--", linewidth=1, label=f"λ_max rand = {rand.max():.3g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("eigenvalue λ")
    ax.set_ylabel("density p(λ)")
    ax.set_title(f"{plots._layer_title(row)}: randomized ESD")
    ax.legend(loc="lower left")
    return plots._finish(fig, path)


def mp_fit(analysis, layer, *, slice_id: int | None = None, bins: int | None = None,
           path: str | os.PathLike | None = None):
    """The ESD on linear axes with the Marchenko–Pastur bulk density ``plots.mp_density`` drawn over it."""
    row = plots._layer_row(analysis, layer, slice_id)
    pos = _positive(analysis, row)
    fig = plots._figure()
    ax = fig.add_subplot()
    edges = _linear_hist(ax, pos, bins, fill=True, alpha=0.45, color="C0", label=f"ESD ({pos.size} eigenvalues)")
    if all(plots._finite(row.get(k)) for k in ("sigma_mp", "W_scale", "Q")):
        sigma, w_scale, q = row["sigma_mp"], row["W_scale"], row["Q"]
    else:
        fit = spectra.marchenko_pastur_fit(pos, N=int(row["N"]), M=int(row["M"]))
        if fit.status != "success":
            raise ValueError(f"layer {row['longname']!r}: no Marchenko–Pastur fit ({fit.reason})")
        sigma, w_scale, q = fit.sigma_mp, fit.W_scale, fit.Q
    lam = np.linspace(edges[0], edges[-1], 600)
    ax.plot(lam, plots.mp_density(lam, sigma=sigma, Q=q, W_scale=w_scale), color="C2", linewidth=1.5,
            label=f"Marchenko–Pastur, σ = {sigma:.3g}, Q = {q:.3g}")
    ax.set_xlabel("eigenvalue λ of WᵀW")
    ax.set_ylabel("density p(λ)")
    ax.set_title(f"{plots._layer_title(row)}: Marchenko–Pastur fit")
    ax.legend()
    return plots._finish(fig, path)


def _gaps(analysis, row: dict) -> tuple[np.ndarray, np.ndarray]:
    """(ascending ESD, log10 of its positive consecutive gaps Δᵢ = λᵢ₊₁ − λᵢ)."""
    ev = np.sort(analysis.esd(row["layer_id"], row.get("slice_id")))
    gaps = np.diff(ev)
    if np.count_nonzero(gaps > 0) < 2:
        raise ValueError(f"layer {row['longname']!r}: fewer than two positive gaps between eigenvalues")
    return ev, np.log10(np.where(gaps > 0, gaps, np.nan))


def deltas(analysis, layer, *, slice_id: int | None = None, path: str | os.PathLike | None = None):
    """log10 of the gaps Δᵢ = λᵢ₊₁ − λᵢ of the ascending ESD against i, a line at the index of xmin."""
    row = plots._layer_row(analysis, layer, slice_id)
    ev, log_gaps = _gaps(analysis, row)
    fig = plots._figure()
    ax = fig.add_subplot()
    ax.scatter(np.arange(log_gaps.size), log_gaps, s=6, color="C0", label="log10 Δᵢ")
    if plots._finite(row.get("xmin")):
        ax.axvline(int(np.searchsorted(ev, row["xmin"], side="left")), color="C3", linestyle="--", linewidth=1,
                   label=f"xmin = {row['xmin']:.3g}")
    ax.set_xlabel("i (ascending eigenvalues)")
    ax.set_ylabel("log10 Δᵢ = log10(λᵢ₊₁ − λᵢ)")
    ax.set_title(f"{plots._layer_title(row)}: eigenvalue gaps")
    ax.legend()
    return plots._finish(fig, path)


def level_statistics(analysis, layer, *, slice_id: int | None = None, bins: int = 100,
                     path: str | os.PathLike | None = None):
    """The density of log10 Δᵢ, the gaps between consecutive eigenvalues (level statistics), on ``bins`` bins."""
    row = plots._layer_row(analysis, layer, slice_id)
    _, log_gaps = _gaps(analysis, row)
    finite = log_gaps[np.isfinite(log_gaps)]
    fig = plots._figure()
    ax = fig.add_subplot()
    ax.hist(finite, bins=bins, density=True, color="C0", alpha=0.8, label=f"{finite.size} gaps")
    ax.set_xlabel("log10 Δ = log10(λᵢ₊₁ − λᵢ)")
    ax.set_ylabel("density")
    ax.set_title(f"{plots._layer_title(row)}: level statistics")
    ax.legend()
    return plots._finish(fig, path)


_DRAW = {"esd": plots.esd, "esd-linear": esd_linear, "ks-distance": plots.ks_distance,
         "alpha-vs-xmin": alpha_vs_xmin, "randomized": randomized_esd, "mp-fit": mp_fit,
         "deltas": deltas, "level-stats": level_statistics}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _stem(row: dict) -> str:
    name = _UNSAFE.sub("_", str(row["longname"])).strip("._") or "layer"
    stem = f"{int(row['layer_id']):04d}-{name[:120]}"
    return stem + (f"-s{row['slice_id']}" if row.get("slice_id") is not None else "")


def save_layer_figures(analysis, directory: str | os.PathLike, *, figures=FIGURES, fmt: str = "png") -> list[Path]:
    """Write ``figures`` (names from ``FIGURES``) for every analysed matrix into ``directory`` (created) as
    ``<layer_id>-<name>[-s<slice>]-<figure>.<fmt>``; returns the paths written.

    A figure that cannot be drawn for a layer (no randomized ESD without ``randomize=True``, no MP fit, fewer
    than two positive eigenvalues) is left out with an INFO log line naming layer and reason; the others are
    still written.
    """
    unknown = [f for f in figures if f not in _DRAW]
    if unknown:
        raise ValueError(f"unknown figure(s) {unknown}: choose from {', '.join(FIGURES + DELTA_FIGURES)}")
    if fmt not in ("png", "svg"):
        raise ValueError(f"figure format must be png or svg, got {fmt!r}")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for row in analysis.analysed:
        for name in figures:
            try:
                fig = _DRAW[name](analysis, row["layer_id"], slice_id=row.get("slice_id"))
            except (ValueError, KeyError) as err:
                logger.info("layer %s %s: no %s figure: %s", row["layer_id"], row["longname"], name, err)
                continue
            written.append(plots.save(fig, out / f"{_stem(row)}-{name}.{fmt}"))
    return written
