"""``hts.compare``: how each model-level metric tracks reported accuracy across a series of related models.

For every series and summary metric m (⟨alpha⟩, ⟨alpha_weighted⟩ = α̂, ⟨log_norm⟩, ...), over the models of the
series: the least-squares line accuracy ≈ a + b·m with its RMSE and R² on the fitted points and the slope's
p-value, Kendall's τ-b with its exact p-value and Spearman's ρ between m and accuracy, and the trend in words
("accuracy rises with the metric" for τ ≥ ``NO_TREND_TAU``, "accuracy falls with the metric" for
τ ≤ −``NO_TREND_TAU``, "no trend" in between). This is the comparison of Martin, Peng & Mahoney (Nat. Commun. 12,
4122, 2021, Table 1). A series of fewer than ``MIN_MODELS`` models gets a warning: its trend is not evidence.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from .._json import isnan, jsonable
from .stats import kendall_p, kendall_tau, ols, slope_p, spearman_rho

__all__ = ["METRICS", "MIN_MODELS", "NO_TREND_TAU", "Comparison", "CompareInputError", "compare"]

logger = logging.getLogger("hts")

#: |τ| below this is reported as "no trend" (a weak association: fewer than 60 % of the pairs agree).
NO_TREND_TAU = 0.2
#: A series with fewer models than this gets a warning that its trend is not evidence.
MIN_MODELS = 4

#: Summary metrics compared, in table order; those absent from every model are left out.
METRICS = ("alpha", "alpha_weighted", "log_norm", "log_spectral_norm", "log_alpha_norm", "stable_rank",
           "log_stable_rank", "mp_softrank")

#: Column names read as the accuracy (in %), then as the error (accuracy = 100 − error), when none is given.
ACCURACY_COLUMNS = ("accuracy", "top1_accuracy", "top1_acc", "acc")
ERROR_COLUMNS = ("top1_error_pct", "top1_error", "error")


class CompareInputError(ValueError):
    """A problem with ``hts.compare``'s inputs. ``str()`` speaks Python (keyword arguments); ``cli`` says the
    same in the command line's options, for ``hts compare``."""

    def __init__(self, message: str, cli: str | None = None) -> None:
        super().__init__(message)
        self.cli = cli or message


class Comparison:
    """The result of ``hts.compare``: plain data, JSON-serialisable.

    Attributes
    ----------
    models : list of dict
        One dict per model: ``series``, ``model``, ``accuracy`` and its summary metrics.
    rows : list of dict
        One dict per (series, metric): ``n``, ``slope``, ``slope_p`` (two-sided p of the OLS slope),
        ``intercept``, ``rmse``, ``r2``, ``kendall_tau``, ``kendall_p`` (two-sided; exact without ties),
        ``kendall_p_method`` ("exact" or "normal"), ``spearman_rho``, ``trend``.
    analyses : dict
        name → ``hts.Analysis`` for the models analysed from weights by this call (empty otherwise).
    accuracy_sources : list of str
        Where the accuracies came from, e.g. "column 'top1_error_pct' of series.csv (accuracy = 100 − error)".
    warnings : list of str
        Caveats about the statistics (a series of fewer than ``MIN_MODELS`` models).
    """

    def __init__(self, models: list[dict], rows: list[dict], analyses: dict | None = None,
                 accuracy_sources: Iterable[str] = ()) -> None:
        self.models = models
        self.rows = rows
        self.analyses = dict(analyses or {})
        self.accuracy_sources = list(dict.fromkeys(accuracy_sources))
        self.warnings = few_models_warnings(models)

    @property
    def series(self) -> list[str]:
        """The series names, in first-seen order."""
        return list(dict.fromkeys(m["series"] for m in self.models))

    @property
    def metrics(self) -> list[str]:
        """The metrics compared, in table order."""
        return list(dict.fromkeys(r["metric"] for r in self.rows))

    @property
    def table(self):
        """pandas DataFrame of ``rows``."""
        from .._frames import table

        return table(self.rows, list(_ROW_KEYS))

    def stat(self, series: str, metric: str) -> dict:
        """The row of one series and metric."""
        for r in self.rows:
            if r["series"] == series and r["metric"] == metric:
                return r
        raise KeyError(f"no row for series {series!r}, metric {metric!r}")

    def to_dict(self) -> dict:
        """Everything as plain JSON types (NaN becomes None)."""
        return jsonable({"models": self.models, "rows": self.rows, "accuracy_sources": self.accuracy_sources,
                         "warnings": self.warnings})

    def to_json(self, path: str | os.PathLike | None = None, **kwargs) -> str:
        """Strict JSON text of ``to_dict()``; written to ``path`` when given."""
        text = json.dumps(self.to_dict(), allow_nan=False, **kwargs)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def to_csv(self, path: str | os.PathLike) -> None:
        """``rows`` as a CSV file (empty cells for NaN)."""
        with open(path, "w", newline="", encoding="utf-8", errors="backslashreplace") as f:  # "\ud800" shown
            writer = csv.DictWriter(f, fieldnames=list(_ROW_KEYS))
            writer.writeheader()
            for r in self.rows:
                writer.writerow({k: ("" if isnan(v) else v) for k, v in r.items()})

    def to_html(self, path: str | os.PathLike | None = None, **kwargs) -> str:
        """A self-contained HTML page (see ``hts.report.html.comparison_html``); written to ``path`` when given."""
        from .html import comparison_html

        text = comparison_html(self, **kwargs)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def format(self) -> str:
        """A plain-text table, one line per series and metric, then where the accuracy came from and the
        warnings. ``p(tau)`` is Kendall's two-sided p (exact without ties; ``*`` marks the normal
        approximation), ``p(slope)`` the OLS slope's."""
        w = max([6] + [len(str(r["series"])) for r in self.rows])
        head = (f"{'series':<{w}} {'metric':<18} {'n':>3} {'rmse':>8} {'r2':>6} {'slope':>9} {'p(slope)':>9} "
                f"{'tau':>6} {'p(tau)':>9} {'rho':>6}  trend")
        lines = [head]
        for r in self.rows:
            mark = "*" if r["kendall_p_method"] == "normal" else " "
            lines.append(f"{r['series']:<{w}} {r['metric']:<18} {r['n']:>3} {r['rmse']:>8.3f} {r['r2']:>6.3f} "
                         f"{r['slope']:>9.3g} {r['slope_p']:>9.3g} {r['kendall_tau']:>6.3f} "
                         f"{r['kendall_p']:>8.3g}{mark} {r['spearman_rho']:>6.3f}  {r['trend']}")
        if any(r["kendall_p_method"] == "normal" for r in self.rows):
            lines.append("* p(tau) from the normal approximation (ties)")
        for source in self.accuracy_sources:
            lines.append(f"accuracy: {source}")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"<hts.Comparison: {len(self.models)} models in {len(self.series)} series, "
                f"{len(self.metrics)} metrics>")


_ROW_KEYS = ("series", "metric", "n", "slope", "slope_p", "intercept", "rmse", "r2", "kendall_tau", "kendall_p",
             "kendall_p_method", "spearman_rho", "trend")


def trend(tau: float) -> str:
    """The association of accuracy with the metric in words: "accuracy rises with the metric" (τ ≥
    ``NO_TREND_TAU``), "accuracy falls with the metric" (τ ≤ −``NO_TREND_TAU``), else (or τ undefined)
    "no trend"."""
    if isnan(tau) or abs(tau) < NO_TREND_TAU:
        return "no trend"
    return "accuracy rises with the metric" if tau > 0 else "accuracy falls with the metric"


def few_models_warnings(models: list[dict]) -> list[str]:
    """One warning per series of fewer than ``MIN_MODELS`` models."""
    out = []
    for name in dict.fromkeys(d["series"] for d in models):
        n = sum(d["series"] == name for d in models)
        if n < MIN_MODELS:
            out.append(f"series {name!r} has {n} model{'s' if n != 1 else ''}: a trend over fewer than "
                       f"{MIN_MODELS} models is not evidence (see the p-values)")
    return out


def series_rows(models: list[dict], metrics: Iterable[str] | None = None) -> list[dict]:
    """The statistics of every (series, metric) over ``models`` (dicts with series, accuracy and metrics)."""
    wanted = list(metrics) if metrics is not None else [
        m for m in METRICS if any(_finite(d.get(m)) for d in models)]
    rows = []
    for name in dict.fromkeys(d["series"] for d in models):
        group = [d for d in models if d["series"] == name]
        acc = [d["accuracy"] for d in group]
        for metric in wanted:
            x = [d.get(metric, float("nan")) for d in group]
            x = [float("nan") if v is None else float(v) for v in x]
            fit = ols(x, acc)
            tau = kendall_tau(x, acc)
            p_tau, method = kendall_p(x, acc)
            rows.append({"series": name, "metric": metric, "n": fit.n, "slope": fit.slope,
                         "slope_p": slope_p(x, acc), "intercept": fit.intercept, "rmse": fit.rmse, "r2": fit.r2,
                         "kendall_tau": tau, "kendall_p": p_tau, "kendall_p_method": method,
                         "spearman_rho": spearman_rho(x, acc), "trend": trend(tau)})
    return rows


def _finite(v: Any) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


# -- inputs -------------------------------------------------------------------------------------------
def _read_csv(path: str | os.PathLike) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path}: no rows")
    return rows


def _model_column(row: dict, path: Any) -> str:
    for key in ("model", "name"):
        if key in row:
            return key
    raise ValueError(f"{path}: needs a 'model' (or 'name') column, has {sorted(row)}")


def _accuracy_of(row: dict, accuracy_column: str | None, error_column: str | None, where: str,
                 sources: list | None = None, file: Any = None) -> float:
    """Accuracy in % from ``accuracy_column`` or 100 − ``error_column`` (detected when neither is given); the
    column taken is described in ``sources``."""
    if accuracy_column is None and error_column is None:
        accuracy_column = next((c for c in ACCURACY_COLUMNS if c in row), None)
        error_column = None if accuracy_column else next((c for c in ERROR_COLUMNS if c in row), None)
        if accuracy_column is None and error_column is None:
            text = (f"{where}: no accuracy column (one of {', '.join(ACCURACY_COLUMNS)}) or error column (one "
                    f"of {', '.join(ERROR_COLUMNS)})")
            raise CompareInputError(text + "; name one with accuracy_column=/error_column=",
                                    text + "; name one with --accuracy-column/--error-column")
    column = accuracy_column or error_column
    if column not in row:
        raise CompareInputError(f"{where}: no column {column!r} (it has {', '.join(row)})")
    try:
        value = float(row[column])
    except ValueError:
        raise CompareInputError(f"{where}: column {column!r} holds {row[column]!r}, not a number") from None
    if sources is not None:
        name = Path(file).name if file is not None else "the CSV"
        sources.append(f"column {column!r} of {name}" if accuracy_column
                       else f"100 - column {column!r} of {name} (an error in %)")
    return value if accuracy_column else 100.0 - value


def _is_csv(x: Any) -> bool:
    return isinstance(x, (str, os.PathLike)) and str(x).lower().endswith(".csv")


def _accuracies(accuracy: Any, accuracy_column: str | None, error_column: str | None, sources: list) -> dict:
    if accuracy is None:
        return {}
    if _is_csv(accuracy):
        rows = _read_csv(accuracy)
        key = _model_column(rows[0], accuracy)
        return {r[key]: _accuracy_of(r, accuracy_column, error_column, str(accuracy), sources, accuracy)
                for r in rows}
    if isinstance(accuracy, Mapping):
        sources.append("the accuracy given per model")
        return {str(k): float(v) for k, v in accuracy.items()}
    raise TypeError(f"accuracy must be a mapping model → accuracy or a CSV path, got {type(accuracy).__name__}")


def _summary_rows(path: Any, accuracies: dict, accuracy_column, error_column, series,
                  sources: list) -> list[dict]:
    """Models from a CSV of already-computed summaries (one row per model)."""
    rows = _read_csv(path)
    key = _model_column(rows[0], path)
    out = []
    for r in rows:
        name = r[key]
        if name in accuracies:
            acc = accuracies[name]
        else:
            acc = _accuracy_of(r, accuracy_column, error_column, f"{path}, model {name!r}", sources, path)
        entry = {"series": _series_of(name, r.get("series"), series), "model": name, "accuracy": acc}
        for metric in METRICS:
            if metric in r and r[metric] != "":
                entry[metric] = float(r[metric])
        out.append(entry)
    return out


def _series_of(name: str, given: str | None, series: Any) -> str:
    if isinstance(series, Mapping):
        return str(series.get(name, given or "series"))
    if series is not None:
        return str(series)
    return given or "series"


def named_models(models: Any, name_path=None, what: str = "models") -> list[tuple[str, Any]]:
    """(name, model) pairs from a mapping name → model, (name, model) pairs, or paths. A path becomes the pairs
    ``name_path(path)`` returns (default: one pair named by its file stem, or folder name)."""
    if name_path is None:
        def name_path(item):
            p = Path(item)
            return [(p.stem if p.suffix else p.name, item)]
    if isinstance(models, Mapping):
        return [(str(k), v) for k, v in models.items()]
    if isinstance(models, (str, os.PathLike)):
        models = [models]
    out = []
    for item in models:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            out.append(item)
        elif isinstance(item, (str, os.PathLike)):
            out += name_path(item)
        else:
            raise TypeError(f"give {what} as a mapping name → model, (name, model) pairs, or paths; "
                            f"got a {type(item).__name__} without a name")
    return out


def compare(
    models: Any,
    accuracy: Any = None,
    *,
    series: str | Mapping | None = None,
    metrics: Iterable[str] | None = None,
    accuracy_column: str | None = None,
    error_column: str | None = None,
    **analyze_options: Any,
) -> Comparison:
    """Compare a series of related models: how each summary metric tracks their reported accuracy.

    Parameters
    ----------
    models
        One of: a CSV path of already-computed summaries (one row per model; a ``model`` column, metric
        columns named as in ``Analysis.summary``, optionally ``series`` and the accuracy or error); a mapping
        name → model, where a model is an ``hts.Analysis``, a summary dict (``Analysis.summary``), or anything
        ``hts.analyze`` accepts (a path, a module, a state_dict); (name, model) pairs; or paths (named by
        their file stem). CSV paths may also be mixed in a list: each is read as a summary table.
    accuracy
        Reported accuracy in % per model name: a mapping or a CSV (``model`` column and an accuracy or error
        column). Optional when the summary CSV carries it; where both give one, this one wins.
    series
        Series name for all models, or a mapping model → series (default: the CSV's ``series`` column, else
        one series called "series").
    metrics
        Metrics to compare (default: those of ``METRICS`` present in any model).
    accuracy_column, error_column
        Which CSV column holds the accuracy, or the error (accuracy = 100 − error). Default: the first of
        ``ACCURACY_COLUMNS``, else of ``ERROR_COLUMNS``, that the CSV has.
    **analyze_options
        Passed to ``hts.analyze`` for models given as weights.

    Returns
    -------
    Comparison
        Per series and metric: OLS slope, intercept, RMSE = √(mean residual²) and R² = 1 − SSE/SST of
        accuracy on the metric, Kendall's τ-b and Spearman's ρ of metric and accuracy, and the trend.
    """
    from ..analysis import Analysis, analyze

    sources: list[str] = []
    accuracies = _accuracies(accuracy, accuracy_column, error_column, sources)
    entries: list[dict] = []
    analyses: dict = {}
    items = [models] if _is_csv(models) else models
    if not isinstance(items, Mapping) and not isinstance(items, (str, os.PathLike)):
        items = list(items)
        tables = [m for m in items if _is_csv(m)]
        items = [m for m in items if not _is_csv(m)]
        for path in tables:
            entries += _summary_rows(path, accuracies, accuracy_column, error_column, series, sources)
    named = named_models(items)
    missing = [name for name, _ in named if name not in accuracies]
    if missing:  # before any analysis
        raise CompareInputError(
            f"no accuracy for model{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}; give "
            f"accuracy={{{missing[0]!r}: ...}} (in %), or use hts.trajectory for checkpoints without accuracies",
            f"no accuracy for model{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}; give "
            f"--accuracy {missing[0]}=VALUE (in %) for each, or --accuracy CSV, or no --accuracy at all for a "
            "trajectory of checkpoints")
    for name, model in named:
        if isinstance(model, Analysis):
            summary = model.summary
        elif isinstance(model, Mapping) and any(k in model for k in METRICS) and not _has_arrays(model):
            summary = dict(model)
        else:
            result = analyze(model, **analyze_options)
            analyses[name] = result
            summary = result.summary
        if isinstance(model, Analysis):
            analyses[name] = model
        entry = {"series": _series_of(name, None, series), "model": name, "accuracy": accuracies[name]}
        entry.update({k: float(v) for k, v in summary.items() if k in METRICS and v is not None})
        entries.append(entry)
    if not entries:
        raise CompareInputError("no models to compare")
    result = Comparison(entries, series_rows(entries, metrics), analyses, sources)
    for text in result.warnings:
        logger.warning("%s", text)
    return result


def _has_arrays(mapping: Mapping) -> bool:
    """A state_dict or dict of arrays (weights), as opposed to a summary of numbers."""
    return any(hasattr(v, "shape") and getattr(v, "ndim", 0) > 0 for v in mapping.values())
