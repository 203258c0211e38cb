"""docs/examples/inference_app.py end to end: served by a real uvicorn on loopback, its /metrics page parsed by
prometheus_client's own parser; hts's gauges equal a direct ``hts.analyze`` of the served weights and share the
app's registry (one port) with the app's own metric."""

from __future__ import annotations

import importlib.util
import json
import math
import threading
import time
import urllib.request
from pathlib import Path

import pytest

import hts
from hts.prometheus import SUMMARY_GAUGES

torch = pytest.importorskip("torch")
uvicorn = pytest.importorskip("uvicorn", reason="the example app test needs uvicorn (test extra)")
pytest.importorskip("starlette", reason="the example app test needs starlette (test extra)")
parser = pytest.importorskip("prometheus_client.parser", reason="needs prometheus_client (prometheus extra)")

APP = Path(__file__).resolve().parents[1] / "docs" / "examples" / "inference_app.py"


def _load_app():
    spec = importlib.util.spec_from_file_location("hts_example_inference_app", APP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def served():
    module = _load_app()
    server = uvicorn.Server(uvicorn.Config(module.app, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield module, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


def _get(url: str) -> tuple[str, str]:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return resp.headers["Content-Type"], resp.read().decode("utf-8")


def _families(text: str) -> dict:
    return {f.name: f for f in parser.text_string_to_metric_families(text)}


def _scrape_until_analysed(base: str, analyses: int = 1) -> dict:
    deadline = time.monotonic() + 60
    while True:
        content_type, text = _get(base + "/metrics")
        fams = _families(text)
        done = [s.value for s in fams["hts_model_analyses"].samples if s.name == "hts_model_analyses_total"]
        if done and done[0] >= analyses:
            assert content_type.startswith("text/plain")
            return fams
        assert time.monotonic() < deadline, "the background analysis never published"
        time.sleep(0.1)


def _value(fams: dict, name: str, **labels) -> float:
    family = fams[name] if name in fams else fams[name.removesuffix("_total")]  # counters: family without _total
    hits = [s.value for s in family.samples if s.name == name and all(s.labels.get(k) == v
                                                                       for k, v in labels.items())]
    assert len(hits) == 1, (name, labels, family.samples)
    return hits[0]


def test_metrics_page_exports_the_served_models_analysis(served):
    module, base = served
    fams = _scrape_until_analysed(base)
    expected = hts.analyze(module.weights_snapshot())
    for key, (name, _) in SUMMARY_GAUGES.items():
        assert _value(fams, name, model="mlp") == pytest.approx(expected.summary[key], rel=1e-12), key
    assert _value(fams, "hts_model_layers", model="mlp", status="analysed") == expected.counts["analysed"] == 3
    assert _value(fams, "hts_model_error", model="mlp") == 0
    assert _value(fams, "hts_model_analysis_running", model="mlp") == 0
    assert _value(fams, "hts_model_analysis_duration_seconds", model="mlp") > 0
    assert math.isclose(_value(fams, "hts_model_last_success_timestamp_seconds", model="mlp"), time.time(),
                        abs_tol=120)


def test_app_metrics_and_hts_gauges_share_one_registry_and_port(served):
    module, base = served
    before = _value(_scrape_until_analysed(base), "app_predictions_total")
    body = json.dumps({"inputs": [[0.1] * module.IN_FEATURES] * 3}).encode()
    req = urllib.request.Request(base + "/predict", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert len(json.loads(resp.read())["classes"]) == 3
    after = _value(_families(_get(base + "/metrics")[1]), "app_predictions_total")
    assert after == before + 3


def test_reanalyze_runs_again_in_the_background(served):
    module, base = served
    _scrape_until_analysed(base)
    req = urllib.request.Request(base + "/reanalyze", data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 202
    fams = _scrape_until_analysed(base, analyses=2)
    assert _value(fams, "hts_model_errors_total", model="mlp") == 0


def test_a_failed_analysis_is_exported_not_raised():
    pytest.importorskip("prometheus_client")
    from prometheus_client import CollectorRegistry, generate_latest

    from hts.prometheus_collector import AnalysisBoard, Collector

    board = AnalysisBoard()
    registry = CollectorRegistry()
    registry.register(Collector(board, per_layer=True))
    good = board.analyze("m", {"fc.weight": torch.randn(200, 100)})
    assert good is not None
    assert board.analyze("m", "/no/such/model.safetensors") is None
    fams = _families(generate_latest(registry).decode())
    assert _value(fams, "hts_model_error", model="m") == 1
    assert _value(fams, "hts_model_errors_total", model="m") == 1
    assert _value(fams, "hts_model_alpha_mean", model="m") == pytest.approx(good.summary["alpha"])  # kept
    assert _value(fams, "hts_layer_alpha", model="m", layer="fc") == pytest.approx(good.rows[0]["alpha"])
