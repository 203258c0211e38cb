"""hts's gauges as a ``prometheus_client`` Collector, for an application that already exports its own metrics.

An inference server registers one ``Collector`` into the registry it already serves (``/metrics`` of the app
itself: no second port, no second process) and publishes each finished analysis into an ``AnalysisBoard``,
typically from a background thread::

    board = hts.prometheus_collector.AnalysisBoard()
    registry.register(hts.prometheus_collector.Collector(board))
    threading.Thread(target=board.analyze, args=("my-model", model), daemon=True).start()

The metric names and meanings are those of ``hts serve``'s ``/metrics`` (``hts.prometheus``), so dashboards
and alerts work against either: per model (label ``model``) the summary means ``hts_model_alpha_mean``,
``hts_model_alpha_weighted_mean``, ``hts_model_log_norm_mean`` (mean log10 ‖W‖²_F),
``hts_model_log_spectral_norm_mean`` (mean log10 λ_max), ``hts_model_stable_rank_mean``; the layer counts
``hts_model_layers{status}``, ``hts_model_layers_over_trained`` (α < 2), ``hts_model_layers_under_trained``
(α > 6); ``hts_model_analysis_duration_seconds``, ``hts_model_last_success_timestamp_seconds``,
``hts_model_error`` (1 when the last attempt failed; the last good result stays exported) and the counters
``hts_model_analyses_total`` / ``hts_model_errors_total``. With ``per_layer=True`` also ``hts_layer_alpha`` and
``hts_layer_alpha_weighted`` (labels ``model``, ``layer``).

``prometheus_client`` is optional (``pip install 'hts[prometheus]'``) and imported only when ``Collector``
collects or describes; the board itself needs nothing.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

from .prometheus import SUMMARY_GAUGES, safe_text

__all__ = ["AnalysisBoard", "Collector", "Published"]


@dataclass(frozen=True)
class Published:
    """One model's exported state (replaced as a whole, never mutated)."""

    name: str
    summary: dict | None = None
    counts: dict | None = None
    layers: tuple = ()
    duration: float = float("nan")
    analysed_at: float = float("nan")
    error: str = ""
    analyses_total: int = 0
    errors_total: int = 0
    running: bool = False


@dataclass
class AnalysisBoard:
    """The latest analysis of each model, published by worker threads and read by the Collector.

    Thread-safe: ``publish``/``fail``/``analyze`` may run on any thread while a scrape reads ``snapshot()``.
    """

    _models: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _update(self, name: str, **changes: Any) -> Published:
        with self._lock:
            old = self._models.get(name) or Published(name=name)
            new = Published(**{**old.__dict__, **changes})
            self._models[name] = new
            return new

    def started(self, name: str) -> None:
        """Mark ``name`` as being analysed (exported as ``hts_model_analysis_running``)."""
        self._update(name, running=True)

    def publish(self, name: str, analysis, *, duration: float = float("nan")) -> None:
        """Export ``analysis`` (an ``hts.Analysis``) as model ``name``'s current result."""
        layers = tuple({"longname": r["longname"], "alpha": r.get("alpha"), "alpha_weighted": r.get("alpha_weighted")}
                       for r in analysis.rows if r["status"] == "success")
        with self._lock:
            old = self._models.get(name) or Published(name=name)
            self._models[name] = Published(name=name, summary=dict(analysis.summary), counts=dict(analysis.counts),
                                           layers=layers, duration=float(duration), analysed_at=time.time(),
                                           analyses_total=old.analyses_total + 1, errors_total=old.errors_total)

    def fail(self, name: str, error: BaseException | str) -> None:
        """Record a failed attempt; the last good result stays exported, ``hts_model_error`` becomes 1."""
        with self._lock:
            old = self._models.get(name) or Published(name=name)
            self._models[name] = Published(**{**old.__dict__, "error": str(error) or type(error).__name__,
                                              "errors_total": old.errors_total + 1, "running": False})

    def analyze(self, name: str, model, **options: Any):
        """Run ``hts.analyze(model, **options)`` here (call it on a background thread) and publish the result,
        or record the failure. Returns the Analysis, or None when it failed (the error is exported, not raised:
        a monitoring thread must not take the application down)."""
        from .analysis import analyze

        self.started(name)
        t0 = time.perf_counter()
        try:
            result = analyze(model, **options)
        except Exception as err:  # noqa: BLE001 - exported as hts_model_error / the error text
            self.fail(name, f"{type(err).__name__}: {err}")
            return None
        self.publish(name, result, duration=time.perf_counter() - t0)
        return result

    def snapshot(self) -> list[Published]:
        """The published states, by model name."""
        with self._lock:
            return [self._models[k] for k in sorted(self._models)]


def _value(x: Any) -> float:
    if x is None:
        return math.nan
    return float(x)


class Collector:
    """A ``prometheus_client`` custom collector exporting an ``AnalysisBoard`` (register it into the app's
    registry: ``registry.register(Collector(board))``). ``per_layer`` adds per-layer alpha gauges (one
    series per layer and model: mind the cardinality on large models)."""

    def __init__(self, board: AnalysisBoard, *, per_layer: bool = False):
        self.board = board
        self.per_layer = per_layer

    def describe(self) -> Iterator:
        """The metric families without samples (so registering does not run a collection)."""
        yield from self._families([])

    def collect(self) -> Iterator:
        yield from self._families(self.board.snapshot())

    def _families(self, states: list[Published]) -> Iterator:
        try:
            from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
        except ImportError as err:
            raise ImportError("hts.prometheus_collector needs prometheus_client: pip install 'hts[prometheus]'") \
                from err
        good = [s for s in states if s.summary is not None]

        def gauge(name: str, doc: str, labels: list[str], samples) -> GaugeMetricFamily:
            fam = GaugeMetricFamily(name, doc, labels=labels)
            for values, v in samples:
                fam.add_metric([safe_text(str(x)) for x in values], _value(v))
            return fam

        for key, (name, doc) in SUMMARY_GAUGES.items():
            yield gauge(name, doc, ["model"], (([s.name], s.summary.get(key)) for s in good))
        yield gauge("hts_model_layers", "Layers (rows) of the last good analysis, by status", ["model", "status"],
                    (([s.name, st], s.counts.get(st, 0)) for s in good for st in ("analysed", "failed", "skipped")))
        yield gauge("hts_model_layers_over_trained", "Layers with alpha < 2 (WeightWatcher's label)", ["model"],
                    (([s.name], s.counts.get("over_trained", 0)) for s in good))
        yield gauge("hts_model_layers_under_trained", "Layers with alpha > 6 (WeightWatcher's label)", ["model"],
                    (([s.name], s.counts.get("under_trained", 0)) for s in good))
        yield gauge("hts_model_analysis_duration_seconds", "Wall time of the last good analysis", ["model"],
                    (([s.name], s.duration) for s in good))
        yield gauge("hts_model_last_success_timestamp_seconds", "Unix time when the last good analysis finished",
                    ["model"], (([s.name], s.analysed_at) for s in good))
        yield gauge("hts_model_error", "1 when the last attempt to analyse the model failed (the last good result "
                    "is kept)", ["model"], (([s.name], 1 if s.error else 0) for s in states))
        yield gauge("hts_model_analysis_running", "1 while an analysis of the model is in progress", ["model"],
                    (([s.name], 1 if s.running else 0) for s in states))
        for name, doc, attr in (("hts_model_analyses", "Successful analyses", "analyses_total"),
                                ("hts_model_errors", "Failed attempts to analyse the model", "errors_total")):
            fam = CounterMetricFamily(name, doc, labels=["model"])
            for s in states:
                fam.add_metric([safe_text(s.name)], getattr(s, attr))
            yield fam
        if self.per_layer:
            for column in ("alpha", "alpha_weighted"):
                yield gauge(f"hts_layer_{column}", f"Per-layer {column} of the last good analysis",
                            ["model", "layer"], (([s.name, r["longname"]], r[column]) for s in good
                                                 for r in s.layers))
