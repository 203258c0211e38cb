"""Figures of an analysis or a model series (``hts.plot``): matplotlib's object-oriented API, no pyplot.

Every function returns a ``matplotlib.figure.Figure`` (no global figure state, so it is safe to call from
several threads) and writes it to ``path`` when one is given (PNG or SVG by the suffix). matplotlib is
imported on first use: ``pip install 'hts[plot]'``.

- ``esd``: a layer's ESD on log-log axes with the power-law fit p(λ) ∝ λ^(−α) from xmin, the xmin line, and
  (when available) the ESD of the shuffled weights and the Marchenko–Pastur bulk fit.
- ``ks_distance``: the Kolmogorov–Smirnov distance D of the power-law fit against the candidate xmin.
- ``alpha_by_layer``: alpha (or another column) against layer index, coloured by layer type; several models.
- ``alpha_histogram``: histogram of the layers' alphas with the over-/under-trained bands (α < 2, α > 6).
- ``series``: each summary metric against reported accuracy, one point per model, least-squares line per series.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .. import spectra
from ..metrics import OVER_TRAINED, UNDER_TRAINED

__all__ = ["alpha_by_layer", "alpha_histogram", "esd", "ks_distance", "save", "save_layer_figures", "series",
           "svg_text"]

#: Axis labels for the summary metrics (logs are base 10). Subscripts and superscripts are mathtext
#: (``$_{10}$``), never a literal underscore; log_norm is log10 of the *squared* Frobenius norm.
LABELS = {
    "alpha": "⟨α⟩ (power-law exponent)",
    "alpha_weighted": r"⟨α̂⟩ = ⟨α·log$_{10}$ λ$_{max}$⟩",
    "log_norm": r"⟨log$_{10}$ ‖W‖$^{2}_{F}$⟩",
    "log_spectral_norm": r"⟨log$_{10}$ λ$_{max}$⟩",
    "log_alpha_norm": r"⟨log$_{10}$ Σλ$^{α}$⟩",
    "stable_rank": r"⟨‖W‖$^{2}_{F}$ / λ$_{max}$⟩",
    "log_stable_rank": r"⟨log$_{10}$ (‖W‖$^{2}_{F}$ / λ$_{max}$)⟩",
    "mp_softrank": r"⟨MP soft rank⟩ (bulk edge / λ$_{max}$)",
}

#: Axis labels for the per-layer columns (the same quantities, one layer).
LAYER_LABELS = {
    "alpha": "α (power-law exponent)",
    "alpha_weighted": r"α̂ = α·log$_{10}$ λ$_{max}$",
    "log_norm": r"log$_{10}$ ‖W‖$^{2}_{F}$",
    "log_spectral_norm": r"log$_{10}$ λ$_{max}$",
    "log_alpha_norm": r"log$_{10}$ Σλ$^{α}$",
    "stable_rank": r"‖W‖$^{2}_{F}$ / λ$_{max}$",
    "mp_softrank": r"MP soft rank (bulk edge / λ$_{max}$)",
}

#: Font sizes of every figure (points): titles, axis labels, tick labels, legends and point labels.
FONT = {"title": 10, "label": 9, "ticks": 8, "legend": 8, "annotation": 7}


def _plain_text(name: str) -> str:
    """A name shown verbatim: ``$`` escaped so mathtext never turns ``_`` into a subscript, a lone surrogate
    (a name that is not UTF-8) as its Python escape ``\\udcXX`` (the font engine refuses surrogates)."""
    return str(name).encode("utf-8", "backslashreplace").decode("utf-8").replace("$", r"\$")


def _layer_label(metric: str) -> str:
    return LAYER_LABELS.get(metric, _plain_text(metric))


def _style(fig) -> None:
    """One set of font sizes on every axes (``FONT``)."""
    for ax in fig.axes:
        ax.title.set_fontsize(FONT["title"])
        ax.xaxis.label.set_fontsize(FONT["label"])
        ax.yaxis.label.set_fontsize(FONT["label"])
        ax.tick_params(labelsize=FONT["ticks"], which="both")
        legend = ax.get_legend()
        if legend is not None:
            for text in legend.get_texts():
                text.set_fontsize(FONT["legend"])


def _figure(width: float = 6.4, height: float = 4.2):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError("hts plots need matplotlib: pip install 'hts[plot]'") from err
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig, path: str | os.PathLike) -> Path:
    """Write ``fig`` to ``path``: PNG (``.png``, 120 dpi) or SVG (``.svg``), by the suffix.

    ``Figure.savefig`` picks matplotlib's Agg or SVG canvas for the format; no pyplot state is involved.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".png":
        fig.savefig(path, format="png", dpi=120, metadata={"Software": None})
    elif suffix == ".svg":
        fig.savefig(path, format="svg", metadata={"Date": None, "Creator": None})
    else:
        raise ValueError(f"{path}: write .png or .svg (got {suffix or 'no suffix'!r})")
    return path


def svg_text(fig) -> str:
    """The figure as SVG markup for inlining into HTML: no XML prolog, no RDF metadata block."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    start, end = text.find("<metadata>"), text.find("</metadata>")
    if start >= 0 and end > start:
        text = text[:start] + text[end + len("</metadata>"):]
    return text


def _finish(fig, path):
    _style(fig)
    if path is not None:
        save(fig, path)
    return fig


# -- one layer -------------------------------------------------------------------------------------------
def _layer_row(analysis, layer: int | str, slice_id: int | None) -> dict:
    rows = [r for r in analysis.analysed if (r["layer_id"] == layer or r["longname"] == layer)
            and (slice_id is None or r.get("slice_id") == slice_id)]
    if not rows:
        raise KeyError(f"no analysed layer {layer!r}" + (f" slice {slice_id}" if slice_id is not None else ""))
    return rows[0]


def _density(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts, _ = np.histogram(values, bins=edges)
    return counts / (values.size * np.diff(edges))


def mp_density(lam: np.ndarray, *, sigma: float, Q: float, W_scale: float = 1.0) -> np.ndarray:
    """Marchenko–Pastur density of λ for eigenvalues rescaled by W_scale² (the ``mp_fit`` convention).

    With λ' = s²λ (s = W_scale) and a, b = (σ(1 ∓ 1/√Q))²: ρ(λ) = s²·√((b − λ')(λ' − a))·Q / (2πσ²λ')
    on a < λ' < b, 0 elsewhere.
    """
    lp = np.asarray(lam, dtype=np.float64) * W_scale**2
    a, b = (sigma * (1 - 1 / math.sqrt(Q))) ** 2, (sigma * (1 + 1 / math.sqrt(Q))) ** 2
    inside = (lp > a) & (lp < b)
    out = np.zeros_like(lp)
    out[inside] = np.sqrt((b - lp[inside]) * (lp[inside] - a)) * Q / (2 * math.pi * sigma**2 * lp[inside])
    return out * W_scale**2


def esd(analysis, layer: int | str, *, slice_id: int | None = None, randomized: bool | None = None,
        mp: bool | None = None, bins: int | None = None, path: str | os.PathLike | None = None):
    """A layer's ESD on log-log axes with its power-law fit (the seed paper's Fig. 1).

    Draws the density of the eigenvalues λ > 0 on ``bins`` log-spaced bins (default 2√n, within 10..80), the fitted tail density
    p(λ) = (m/n)·(α − 1)/xmin·(λ/xmin)^(−α) on [xmin, xmax] (m of the n eigenvalues are >= xmin; with
    ``fit="TPL"``/``"E_TPL"`` the truncated power law (m/n)·λ^(−α) e^(−Λλ)·Λ^(1−α)/Γ(1−α, Λ xmin)), a dashed
    line at xmin, and optionally:

    randomized
        The ESD of the element-shuffled weights (needs ``analyze(randomize=True)``); default: when present.
    mp
        The Marchenko–Pastur bulk density (``mp_density``) from the layer's ``mp_fit`` columns, or fitted
        here with ``spectra.marchenko_pastur_fit`` when ``mp=True`` and the analysis has none; default: when
        the analysis has the columns.
    """
    row = _layer_row(analysis, layer, slice_id)
    ev = analysis.esd(row["layer_id"], slice_id)
    pos = ev[ev > 0]
    if pos.size < 2:
        raise ValueError(f"layer {layer!r}: fewer than two positive eigenvalues to plot")
    rand = None
    if randomized is None or randomized:
        try:
            rand = analysis.esd(row["layer_id"], slice_id, randomized=True)
        except KeyError:
            if randomized:
                raise ValueError("randomized=True needs an analysis made with randomize=True") from None
    lo, hi = pos.min(), pos.max()
    if rand is not None and (rand > 0).any():
        lo, hi = min(lo, rand[rand > 0].min()), max(hi, rand.max())
    if hi <= lo:
        hi = lo * 1.01
    if bins is None:
        bins = int(np.clip(2 * math.sqrt(pos.size), 10, 80))
    edges = np.logspace(math.log10(lo), math.log10(hi), bins + 1)

    fig = _figure()
    ax = fig.add_subplot()
    dens = _density(pos, edges)
    ax.stairs(dens, edges, fill=True, alpha=0.45, color="C0", label=f"ESD ({pos.size} eigenvalues)")
    if rand is not None:
        rpos = rand[rand > 0]
        ax.stairs(_density(rpos, edges), edges, color="C3", linewidth=1.2, label="randomized ESD")
    alpha, xmin, xmax = row["alpha"], row["xmin"], row["xmax"]
    if row["status"] == "success" and np.isfinite(alpha) and np.isfinite(xmin):
        m = int(np.count_nonzero(pos >= xmin))
        top = xmax if np.isfinite(xmax) and xmax > xmin else hi
        lam = np.logspace(math.log10(xmin), math.log10(top), 100)
        Lambda = row.get("Lambda")
        if _finite(Lambda) and Lambda > 0 and alpha > 1:  # the truncated power law (fit="TPL" / "E_TPL")
            from .. import _core

            log_c = (1 - alpha) * math.log(Lambda) - _core.log_upper_gamma(1 - alpha, Lambda * xmin)
            ax.plot(lam, (m / pos.size) * np.exp(-alpha * np.log(lam) - Lambda * lam + log_c), color="C1",
                    linewidth=2, label=f"truncated power law, α = {alpha:.2f}, Λ = {Lambda:.3g}")
        else:
            ax.plot(lam, (m / pos.size) * (alpha - 1) / xmin * (lam / xmin) ** (-alpha), color="C1",
                    linewidth=2, label=f"power law, α = {alpha:.2f}")
        ax.axvline(xmin, color="C1", linestyle="--", linewidth=1, label=f"xmin = {xmin:.3g}")
    _draw_mp(ax, row, pos, edges, mp)
    ax.set_xscale("log")
    ax.set_yscale("log")
    positive = dens[dens > 0]
    if positive.size:
        ax.set_ylim(bottom=positive.min() / 3)
    ax.set_xlabel("eigenvalue λ of WᵀW")
    ax.set_ylabel("density p(λ)")
    ax.set_title(f"{_layer_title(row)}\n{row['layer_type']} {row['N']}×{row['M']}, D = {row['D']:.3f}")
    ax.legend(loc="lower left")
    return _finish(fig, path)


def _layer_title(row: dict) -> str:
    title = f"layer {row['layer_id']} {_plain_text(row['longname'])}"
    return title + (f" slice {row['slice_id']}" if row.get("slice_id") is not None else "")


def _draw_mp(ax, row: dict, pos: np.ndarray, edges: np.ndarray, mp: bool | None) -> None:
    have = all(_finite(row.get(k)) for k in ("sigma_mp", "W_scale", "Q"))
    if mp is False or (mp is None and not have):
        return
    if have:
        sigma, w_scale, q = row["sigma_mp"], row["W_scale"], row["Q"]
    else:
        fit = spectra.marchenko_pastur_fit(pos, N=int(row["N"]), M=int(row["M"]))
        if fit.status != "success":
            return
        sigma, w_scale, q = fit.sigma_mp, fit.W_scale, fit.Q
    lam = np.logspace(math.log10(edges[0]), math.log10(edges[-1]), 400)
    rho = mp_density(lam, sigma=sigma, Q=q, W_scale=w_scale)
    rho[rho <= 0] = np.nan
    ax.plot(lam, rho, color="C2", linewidth=1.5, label=f"Marchenko–Pastur, σ = {sigma:.3g}")


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float, np.floating)) and math.isfinite(float(v))


def xmin_search_range(analysis, row: dict, ev: np.ndarray) -> tuple[float, float] | None:
    """With ``fix_fingers="xmin_peak"``: the (lo, hi) eigenvalue range the analysis searched xmin in
    (``hts.xmin_peak.peak_xmin_range``, on the ESD's scale; lo clipped to the smallest fitted value); else None."""
    if analysis.options.get("fix_fingers") != "xmin_peak" and analysis.options.get("fit") != "E_TPL":
        return None
    from ..xmin_peak import EVALS_THRESH, peak_xmin_range

    scale = float(row["N"]) if analysis.options.get("normalize") else 1.0  # the fit saw the unnormalised ESD
    nz = np.sort(ev * scale)
    nz = nz[nz > EVALS_THRESH]
    if nz.size < 2:
        return None
    _, lo, hi = peak_xmin_range(nz, analysis.options.get("xmin_max"))
    return max(lo, nz[0]) / scale, min(hi, nz[-1]) / scale


def candidate_curve(analysis, row: dict, ev: np.ndarray) -> dict:
    """xmin, alpha, D for every candidate xmin of the layer's fit, recomputed from its stored ESD ``ev``: the
    power-law scan of ``spectra.fit_power_law(curve=True)``, or with ``fit="TPL"``/``"E_TPL"`` the truncated
    power law's (``hts.tpl.fit_truncated_power_law(curve=True)``, on the unnormalised ESD the analysis fitted).
    Raises ValueError when there is no candidate."""
    fit_name = analysis.options.get("fit", "PL")
    if fit_name in ("TPL", "E_TPL"):
        from ..tpl import fit_truncated_power_law

        scale = float(row["N"]) if analysis.options.get("normalize") else 1.0
        t = fit_truncated_power_law(ev * scale, xmin_peak=fit_name == "E_TPL",
                                    xmin_max=analysis.options.get("xmin_max"), curve=True)
        if not t.candidates["xmin"].size:
            raise ValueError(f"layer {row['longname']!r}: no truncated-power-law candidates ({t.fit.reason})")
        return {"xmin": t.candidates["xmin"] / scale, "alpha": t.candidates["alpha"], "D": t.candidates["D"]}
    thresh = 1e-5 / row["N"] if analysis.options.get("normalize") else 1e-5
    fit = spectra.fit_power_law(ev, evals_thresh=thresh, curve=True, threads=1)
    if fit.candidates is None:
        raise ValueError(f"layer {row['longname']!r}: no power-law candidates ({fit.reason})")
    return fit.candidates


def ks_distance(analysis, layer: int | str, *, slice_id: int | None = None,
                path: str | os.PathLike | None = None):
    """The KS distance D of the power-law fit for every candidate xmin of a layer, the chosen one marked.

    Recomputed from the stored ESD with ``spectra.fit_power_law(curve=True)`` (the same scan the analysis
    made; with ``fix_fingers`` the analysis fitted a clipped ESD, so its xmin may differ from the minimum here;
    with ``fix_fingers="xmin_peak"`` the searched range is shaded and the chosen xmin is its minimum; with
    ``fit="TPL"`` the truncated power law's D, ``candidate_curve``).
    """
    row = _layer_row(analysis, layer, slice_id)
    ev = analysis.esd(row["layer_id"], slice_id)
    curve = candidate_curve(analysis, row, ev)
    x, d = curve["xmin"], curve["D"]
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot(x, d, color="C0", linewidth=1.2, marker=".", markersize=3, label="D(xmin)")
    searched = xmin_search_range(analysis, row, ev)
    if searched is not None:
        ax.axvspan(*searched, color="C2", alpha=0.15, label="xmin_peak search range")
    if _finite(row["xmin"]):
        ax.axvline(row["xmin"], color="C1", linestyle="--", label=f"chosen xmin = {row['xmin']:.3g}")
    ax.set_xscale("log")
    ax.set_xlabel("candidate xmin (eigenvalue λ)")
    ax.set_ylabel("KS distance D")
    kind = "truncated-power-law" if analysis.options.get("fit") in ("TPL", "E_TPL") else "power-law"
    ax.set_title(f"{_layer_title(row)}: {kind} fit quality")
    ax.legend()
    return _finish(fig, path)


# -- one or several models -------------------------------------------------------------------------------
def _named_analyses(analyses) -> list[tuple[str, Any]]:
    if isinstance(analyses, Mapping):
        return [(str(k), v) for k, v in analyses.items()]
    if hasattr(analyses, "rows"):
        return [("", analyses)]
    return [(f"model {i}", a) for i, a in enumerate(analyses)]


_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def alpha_by_layer(analyses, *, metric: str = "alpha", path: str | os.PathLike | None = None):
    """``metric`` (default alpha; e.g. "alpha_weighted") of each analysed matrix against its position in
    the model (the seed paper's Fig. 3). One model: coloured by layer type. Several models (a mapping
    name → Analysis): one colour per model (points and the line joining them), one marker per layer type.
    One model whose rows have a ``role`` (``base=``: update, base and merged rows side by side): one colour per
    role, one marker per layer type, so the fine-tune's update rows are never read as the weights' own.
    Dotted lines mark α = 2 and α = 6 when the metric is alpha."""
    fig = _figure(7.2, 4.2)
    ax = fig.add_subplot()
    named = _named_analyses(analyses)
    types = sorted({r["layer_type"] for _, a in named for r in a.analysed})
    several = len(named) > 1
    roles = [] if several else [x for x in dict.fromkeys(r.get("role") for _, a in named for r in a.analysed) if x]
    colour = {t: f"C{i % 10}" for i, t in enumerate(roles or types)}
    marker = {t: _MARKERS[i % len(_MARKERS)] for i, t in enumerate(types)}
    for k, (name, a) in enumerate(named):
        rows = [r for r in a.analysed if _finite(r.get(metric))]
        for role in roles or [None]:
            for t in types:
                pts = [(i, r[metric]) for i, r in enumerate(rows)
                       if r["layer_type"] == t and (role is None or r.get("role") == role)]
                if not pts:
                    continue
                xs, ys = zip(*pts)
                if roles:
                    ax.scatter(xs, ys, s=16, color=colour[role], marker=marker[t], alpha=0.8, label=f"{role} {t}")
                else:
                    label = f"{_plain_text(name)} {t}".strip() if several else t
                    ax.scatter(xs, ys, s=16, color=f"C{k % 10}" if several else colour[t],
                               marker=marker[t] if several else "o", alpha=0.8, label=label)
        if several and rows:
            ax.plot(range(len(rows)), [r[metric] for r in rows], color=f"C{k % 10}", linewidth=0.6, alpha=0.5,
                    zorder=0)
    if metric == "alpha":
        for bound in (OVER_TRAINED, UNDER_TRAINED):
            ax.axhline(bound, color="0.3", linestyle=":", linewidth=1)
    ax.set_xlabel("layer index (analysed matrices, model order)")
    ax.set_ylabel(_layer_label(metric))
    ax.set_title(f"{_plain_text(metric)} by depth")
    if types:
        ax.legend(ncols=2 if len(types) * max(len(named), len(roles)) > 6 else 1)
    return _finish(fig, path)


def alpha_histogram(analyses, *, metric: str = "alpha", bins: int = 30, path: str | os.PathLike | None = None):
    """Histogram of the layers' ``metric`` (default alpha), several models overlaid, with the shaded
    bands α < 2 ("over-trained") and α > 6 ("under-trained")."""
    fig = _figure()
    ax = fig.add_subplot()
    named = _named_analyses(analyses)
    values = [np.array([r[metric] for r in a.analysed if _finite(r.get(metric))]) for _, a in named]
    allv = np.concatenate(values) if values else np.array([])
    if allv.size:
        lo, hi = float(allv.min()), float(allv.max())
        edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
        for k, ((name, _), v) in enumerate(zip(named, values)):
            counts, _ = np.histogram(v, bins=edges)
            ax.stairs(counts, edges, fill=len(named) == 1, alpha=0.6 if len(named) == 1 else 1, color=f"C{k}",
                      label=_plain_text(name) if name else f"{v.size} matrices")
    if metric == "alpha":
        ax.axvspan(min(0.0, allv.min() if allv.size else 0), OVER_TRAINED, color="C3", alpha=0.08,
                   label="over-trained (α < 2)")
        ax.axvspan(UNDER_TRAINED, max(UNDER_TRAINED + 1, allv.max() if allv.size else 0), color="C1",
                   alpha=0.08, label="under-trained (α > 6)")
    ax.set_xlabel(_layer_label(metric))
    ax.set_ylabel("number of matrices")
    ax.set_title(f"distribution of {_plain_text(metric)}")
    ax.legend()
    return _finish(fig, path)


# -- a series of models --------------------------------------------------------------------------------
def series(comparison, metrics=None, *, ncols: int = 2, path: str | os.PathLike | None = None):
    """Each summary metric against reported accuracy (the seed paper's Fig. 2): one panel per metric, one
    point per model, one colour and least-squares line per series, R² and Kendall τ in the legend."""
    metrics = list(metrics) if metrics is not None else comparison.metrics
    if isinstance(metrics, str):
        metrics = [metrics]
    n = len(metrics)
    if n == 0:
        raise ValueError("no metrics to plot")
    cols = min(ncols, n)
    rows = math.ceil(n / cols)
    fig = _figure(4.2 * cols, 3.4 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, metric in zip(axes, metrics):
        for k, name in enumerate(comparison.series):
            pts = [(m[metric], m["accuracy"]) for m in comparison.models
                   if m["series"] == name and _finite(m.get(metric))]
            if not pts:
                continue
            xs, ys = map(np.array, zip(*pts))
            stat = comparison.stat(name, metric)
            label = f"{_plain_text(name)}: R² = {stat['r2']:.2f}, τ = {stat['kendall_tau']:.2f}"
            ax.scatter(xs, ys, color=f"C{k}", s=22, label=label)
            for m in comparison.models:
                if m["series"] == name and _finite(m.get(metric)):
                    ax.annotate(_plain_text(m["model"]), (m[metric], m["accuracy"]), xytext=(3, 3),
                                textcoords="offset points", fontsize=FONT["annotation"], color=f"C{k}")
            if _finite(stat["slope"]):
                line = np.linspace(xs.min(), xs.max(), 2)
                ax.plot(line, stat["intercept"] + stat["slope"] * line, color=f"C{k}", linewidth=1)
        ax.set_xlabel(LABELS.get(metric, _plain_text(metric)))
        ax.set_ylabel("reported top-1 accuracy (%)")
        ax.legend()
    for ax in axes[n:]:
        ax.set_visible(False)
    return _finish(fig, path)


# -- WeightWatcher's per-layer figure set ----------------------------------------------------------------
def save_layer_figures(analysis, directory: str | os.PathLike, **options):
    """Write WeightWatcher-style figures of every analysed matrix into ``directory`` (ESD log-log with the
    fit, linear ESD, KS distance and α against xmin, randomized ESD with its λ_max line, MP fit); see
    ``hts.report.layer_figures.save_layer_figures`` for the options. Returns the paths written."""
    from .layer_figures import save_layer_figures as save_all

    return save_all(analysis, directory, **options)
