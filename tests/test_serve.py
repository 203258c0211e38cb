"""The metrics sidecar (hts.serve, ``hts serve``): pages, re-analysis only on change, bad and half-written
files, loopback by default, per-layer series opt-in, the command line."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import _st_writer as writer
import numpy as np
import pytest

import hts
from hts import prometheus
from hts.serve import MetricsSidecar, file_signature

SAMPLE = re.compile(r'^(\w+)(?:\{(.*)\})? (\S+)$')


def write_model(path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    writer.write(path, {"fc1.weight": rng.standard_t(3, size=(300, 100)).astype(np.float32),
                        "fc2.weight": rng.standard_normal((200, 64)).astype(np.float32),
                        "ln.weight": np.ones(64, np.float32)})


def parse(text: str) -> dict:
    """{(name, frozenset of label pairs): value} of a Prometheus text page; checks every line's syntax."""
    out = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def get(sidecar: MetricsSidecar, path: str) -> tuple[int, str, str]:
    host, port = sidecar.address
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=10) as r:
            return r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read().decode()


def value(page: dict, name: str, **labels) -> float:
    return page[(name, frozenset(labels.items()))]


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "model.safetensors"
    write_model(path)
    return path


@pytest.fixture
def sidecar(model):
    s = MetricsSidecar([str(model)], port=0, interval=3600, settle=0)  # refreshed by hand in the tests
    s.refresh()
    with s:
        yield s


def test_pages(sidecar, model):
    status, ctype, text = get(sidecar, "/metrics")
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    page = parse(text)
    expected = hts.analyze(str(model))
    m = "model.safetensors"
    assert value(page, "hts_model_alpha_mean", model=m) == pytest.approx(expected.summary["alpha"], rel=1e-12)
    assert value(page, "hts_model_alpha_weighted_mean", model=m) == pytest.approx(expected.summary["alpha_weighted"])
    assert value(page, "hts_model_layers", model=m, status="analysed") == 2
    assert value(page, "hts_model_layers", model=m, status="skipped") == 1
    assert value(page, "hts_model_error", model=m) == 0
    assert value(page, "hts_model_analyses_total", model=m) == 1
    assert value(page, "hts_model_analysis_duration_seconds", model=m) > 0
    assert not any(name.startswith("hts_layer_") for name, _ in page)  # per-layer series are opt-in
    status, ctype, text = get(sidecar, "/analysis.json")
    body = json.loads(text)
    assert status == 200 and ctype == "application/json"
    assert body[m]["error"] is None and len(body[m]["analysis"]["layers"]) == 3
    assert get(sidecar, "/healthz")[:1] == (200,)
    assert get(sidecar, "/nope")[0] == 404


def test_reanalyses_only_when_the_file_changes(sidecar, model):
    sidecar.refresh()
    sidecar.refresh()
    assert sidecar.states()[0].analyses_total == 1
    write_model(model, seed=1)
    sidecar.refresh()
    state = sidecar.states()[0]
    assert state.analyses_total == 2
    assert state.summary["alpha"] == pytest.approx(hts.analyze(str(model)).summary["alpha"], rel=1e-12)


def test_same_size_rewrite_with_restored_mtime_is_seen(model):
    """Signature = size + mtime + a hash of both ends: a same-size rewrite whose mtime was put back is caught."""
    before = file_signature(str(model))
    st = os.stat(model)
    blob = bytearray(model.read_bytes())
    blob[-1] ^= 0xFF
    model.write_bytes(bytes(blob))
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert file_signature(str(model)) != before


def test_a_broken_file_sets_the_error_gauge_and_keeps_the_last_good_result(sidecar, model, caplog):
    good = model.read_bytes()
    alpha = sidecar.states()[0].summary["alpha"]
    model.write_bytes(good[: len(good) // 2])  # half-written
    with caplog.at_level(logging.WARNING, logger="hts"):
        sidecar.refresh()
    page = parse(get(sidecar, "/metrics")[2])
    m = "model.safetensors"
    assert value(page, "hts_model_error", model=m) == 1
    assert value(page, "hts_model_errors_total", model=m) == 1
    assert value(page, "hts_model_alpha_mean", model=m) == alpha
    assert "model.safetensors" in caplog.text and "last good" in caplog.text
    assert json.loads(get(sidecar, "/analysis.json")[2])[m]["error"]
    sidecar.refresh()  # unchanged broken file: not retried, not counted again
    assert sidecar.states()[0].errors_total == 1
    model.write_bytes(good)
    sidecar.refresh()
    page = parse(get(sidecar, "/metrics")[2])
    assert value(page, "hts_model_error", model=m) == 0 and value(page, "hts_model_analyses_total", model=m) == 2


def test_a_file_changing_during_the_analysis_is_not_published(model, monkeypatch):
    import hts.serve as serve

    s = MetricsSidecar([str(model)], port=0, settle=0)
    real = serve.analyze

    def analyze_while_rewritten(path, **kw):
        result = real(path, **kw)
        write_model(model, seed=5)  # the writer was still at work
        return result

    monkeypatch.setattr(serve, "analyze", analyze_while_rewritten)
    s.refresh()
    state = s.states()[0]
    assert state.summary is None and state.unstable and not state.ready
    assert value(parse(s.page("/metrics")[0].decode()), "hts_model_unstable", model="model.safetensors") == 1
    monkeypatch.setattr(serve, "analyze", real)
    s.refresh()  # retried although the files did not change since
    assert s.states()[0].summary is not None and not s.states()[0].error
    s.close()


def test_missing_file_and_symlink_loop(tmp_path, model):
    folder = tmp_path / "loop"
    folder.mkdir()
    write_model(folder / "model.safetensors")
    os.symlink(folder, folder / "again")  # a symlink loop: never followed
    s = MetricsSidecar([str(tmp_path / "missing.safetensors"), str(folder)], port=0, settle=0)
    s.refresh()
    missing, looped = s.states()
    assert missing.error and missing.summary is None and "waiting for" in missing.error
    assert not looped.error and looped.counts["analysed"] == 2
    s.close()


def test_loopback_by_default_and_a_warning_otherwise(model, caplog):
    s = MetricsSidecar([str(model)], port=0)
    assert s.address[0] == "127.0.0.1"
    s.close()
    with caplog.at_level(logging.WARNING, logger="hts"):
        s = MetricsSidecar([str(model)], host="0.0.0.0", port=0)
    assert "reachable from other machines" in caplog.text
    s.close()


def test_per_layer_series_and_label_escaping(tmp_path):
    path = tmp_path / 'we"ird\\name.safetensors'
    write_model(path)
    s = MetricsSidecar([str(path)], port=0, per_layer=True, settle=0)
    s.refresh()
    text = s.page("/metrics")[0].decode()
    page = parse(text)
    label = 'we\\"ird\\\\name.safetensors'
    assert value(page, "hts_layer_alpha", model=label, layer="fc1") > 1
    assert ("hts_layer_alpha", frozenset({("model", label), ("layer", "ln")})) not in page  # skipped layer
    s.close()


def test_render_handles_nan_and_no_models():
    assert prometheus.number(float("nan")) == "NaN" and prometheus.number(float("inf")) == "+Inf"
    assert prometheus.number(3) == "3" and prometheus.number(None) == "NaN"
    parse(prometheus.render([]))


def test_bad_arguments(model):
    with pytest.raises(ValueError):
        MetricsSidecar([], port=0)
    with pytest.raises(ValueError):
        MetricsSidecar([str(model)], port=0, interval=0)


def test_the_command_line(model):
    proc = subprocess.Popen([sys.executable, "-m", "hts", "serve", str(model), "--port", "0", "--interval", "0.2"],
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        m = re.search(r"http://([\d.]+):(\d+)/metrics", line)
        assert m, line
        url = f"http://{m.group(1)}:{m.group(2)}/metrics"
        deadline = time.monotonic() + 30
        while True:
            page = parse(urllib.request.urlopen(url, timeout=10).read().decode())
            if ("hts_model_alpha_mean", frozenset({("model", "model.safetensors")})) in page:
                break
            assert time.monotonic() < deadline, "no analysis after 30 s"
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stderr.close()
    assert proc.returncode == 0
