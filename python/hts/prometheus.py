"""Prometheus text exposition (format 0.0.4) of the sidecar's model states; pure formatting, no I/O.

Per model (label ``model``): the summary means (alpha, alpha_weighted, log_norm, log_spectral_norm,
stable_rank), layer counts by status and by label, the last analysis' duration and time, and error gauges.
Per layer (labels ``model``, ``layer``), only when asked for: alpha and alpha_weighted.
"""

from __future__ import annotations

import math
from typing import Iterable

__all__ = ["CONTENT_TYPE", "render", "safe_text"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: summary key -> (metric name, help)
SUMMARY_GAUGES = {
    "alpha": ("hts_model_alpha_mean", "Mean power-law exponent alpha over the analysed layers"),
    "alpha_weighted": ("hts_model_alpha_weighted_mean", "Mean alpha * log10(lambda_max) over the analysed layers"),
    "log_norm": ("hts_model_log_norm_mean", "Mean log10 squared Frobenius norm over the analysed layers"),
    "log_spectral_norm": ("hts_model_log_spectral_norm_mean", "Mean log10 lambda_max over the analysed layers"),
    "stable_rank": ("hts_model_stable_rank_mean", "Mean stable rank over the analysed layers"),
}


def safe_text(value: str) -> str:
    """``value`` with anything UTF-8 cannot encode (lone surrogates from undecodable file or tensor names)
    written as a backslash escape, so every name renders."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def escape(value: str) -> str:
    """A label value as the exposition format quotes it (backslash, double quote, newline escaped; lone
    surrogates as ``\\udcxx``)."""
    return safe_text(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def number(x) -> str:
    if x is None:
        return "NaN"
    if isinstance(x, (bool, int)):
        return str(int(x))
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return repr(x)


def _family(name: str, kind: str, help_text: str, samples: Iterable[tuple[dict, object]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        text = ",".join(f'{k}="{escape(str(v))}"' for k, v in labels.items())
        lines.append(f"{name}{{{text}}} {number(value)}" if text else f"{name} {number(value)}")
    return lines


def render(states: list, *, per_layer: bool = False) -> str:
    """The /metrics page for a list of ``serve.ModelState`` (each with ``name``, ``summary``, ``counts``,
    ``duration``, ``analysed_at``, ``error``, ``errors_total``, ``analyses_total``, ``layers``)."""
    good = [s for s in states if s.summary is not None]
    lines: list[str] = []
    for key, (name, help_text) in SUMMARY_GAUGES.items():
        lines += _family(name, "gauge", help_text, (({"model": s.name}, s.summary.get(key)) for s in good))
    lines += _family("hts_model_layers", "gauge", "Layers (rows) of the last good analysis, by status",
                     (({"model": s.name, "status": st}, s.counts[st]) for s in good
                      for st in ("analysed", "failed", "skipped")))
    lines += _family("hts_model_layers_over_trained", "gauge", "Layers with alpha < 2 (WeightWatcher's label)",
                     (({"model": s.name}, s.counts["over_trained"]) for s in good))
    lines += _family("hts_model_layers_under_trained", "gauge", "Layers with alpha > 6 (WeightWatcher's label)",
                     (({"model": s.name}, s.counts["under_trained"]) for s in good))
    lines += _family("hts_model_analysis_duration_seconds", "gauge", "Wall time of the last good analysis",
                     (({"model": s.name}, s.duration) for s in good))
    lines += _family("hts_model_last_success_timestamp_seconds", "gauge",
                     "Unix time when the last good analysis finished", (({"model": s.name}, s.analysed_at) for s in good))
    lines += _family("hts_model_error", "gauge",
                     "1 when the last attempt to read, analyse or render the model failed (the last good result "
                     "is kept)", (({"model": s.name}, 1 if s.error or getattr(s, "render_error", "") else 0)
                                  for s in states))
    lines += _family("hts_model_ready", "gauge",
                     "1 when a good result is served and it is current (what /readyz reports)",
                     (({"model": s.name}, 1 if getattr(s, "ready", s.summary is not None) else 0) for s in states))
    lines += _family("hts_model_stale", "gauge",
                     "1 when the served result is older than the files (the last attempt failed or they are "
                     "still changing)", (({"model": s.name}, 1 if getattr(s, "stale", False) else 0) for s in states))
    lines += _family("hts_model_unstable", "gauge",
                     "1 when the files were being modified at the last check (nothing is analysed until they "
                     "settle)", (({"model": s.name}, 1 if getattr(s, "unstable", False) else 0) for s in states))
    lines += _family("hts_model_errors_total", "counter", "Failed attempts to read or analyse the model",
                     (({"model": s.name}, s.errors_total) for s in states))
    lines += _family("hts_model_analyses_total", "counter", "Successful analyses (one per change of the files)",
                     (({"model": s.name}, s.analyses_total) for s in states))
    if per_layer:
        for column in ("alpha", "alpha_weighted"):
            lines += _family(f"hts_layer_{column}", "gauge", f"Per-layer {column} of the last good analysis",
                             (({"model": s.name, "layer": r["longname"]}, r[column]) for s in good
                              for r in s.layers if r["status"] != "skipped"))
    return "\n".join(lines) + "\n"
