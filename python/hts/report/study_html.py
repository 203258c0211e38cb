"""The HTML page of a study (``Study.to_html``): one self-contained page for every model of a catalog."""

from __future__ import annotations

import html

from . import plots
from .html import _figure_block, _page, _table

__all__ = ["study_html"]

_MODEL_COLUMNS = ("model", "series", "accuracy", "step", "status", "reason", "alpha", "alpha_weighted", "log_norm",
                  "log_spectral_norm", "log_alpha_norm", "stable_rank", "analysed", "failed", "skipped")
_STAT_COLUMNS = ("series", "metric", "n", "rmse", "r2", "kendall_tau", "kendall_p", "spearman_rho", "slope", "slope_p",
                 "intercept", "trend")


def study_html(study, *, title: str | None = None) -> str:
    """Models and failures; per series, each summary metric against reported accuracy (the seed paper's
    Fig. 2, where the series has accuracies) and alpha by depth of its models (its Fig. 3)."""
    title = title or "hts study"
    models = study.model_rows()
    series = list(dict.fromkeys(e.series for e in study.entries))
    state = "complete" if study.complete else (f"stopped: {study.stopped}" if study.stopped else "with failures")
    parts = [f"<h1>{html.escape(title)}</h1>",
             f'<p class="meta">{len(study.analyses)} of {len(study.entries)} models analysed in {len(series)} '
             f"series ({html.escape(state)}); {study.tasks} tasks, {study.reused} reused from the store "
             f"{html.escape(str(study.store))}</p>",
             "<h2>Models</h2>", _table(models, [c for c in _MODEL_COLUMNS if any(c in m for m in models)])]
    if study.failures:
        parts += ["<h2>Failures</h2>", _table(study.failures, ("model", "part", "reason"))]
    comparisons = study.comparisons()
    for k, name in enumerate(series):
        members = {e.name: study.analyses[e.name] for e in study.entries
                   if e.series == name and e.name in study.analyses}
        parts.append(f"<h2>Series {html.escape(name)}</h2>")
        if not members:
            parts.append("<p>No model of this series was analysed.</p>")
            continue
        figures = []
        if name in comparisons:
            comparison = comparisons[name]
            parts += ["<p>OLS fit of accuracy on each metric, Kendall τ-b and Spearman ρ"
                      f"{' (fewer than 5 models: a trend here is not evidence)' if len(members) < 5 else ''}.</p>",
                      _table(comparison.rows, _STAT_COLUMNS)]
            figures.append(_figure_block(plots.series(comparison), f"s{k}-series-",
                                         "each summary metric against reported accuracy, one point per model"))
        else:
            parts.append("<p>No accuracy statistics: the series needs two or more analysed models, each with "
                         "an accuracy in the catalog.</p>")
        figures.append(_figure_block(plots.alpha_by_layer(members), f"s{k}-depth-", "alpha by depth"))
        parts += ['<div class="figs">', *figures, "</div>"]
    return _page(title, "\n".join(parts), study.to_dict())
