"""``hts analyze PATH --base BASE`` and ``hts report PATH --base BASE``: the same rows as
``hts.analyze(PATH, base=BASE)`` (real peft adapters on MiniLM and tiny models, and two .npz models), and errors
that name what is missing."""

from __future__ import annotations

import json

import numpy as np
import pytest

import hts
from hts.cli import main

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_analyze_base_adapter_json_matches_api(peft_adapter, tmp_path, capsys):
    case = peft_adapter("minilm", r=4, lora_alpha=8, target_modules=["query"])
    out = tmp_path / "rows.json"
    assert main(["analyze", str(case.path), "--base", str(case.base_path), "--format", "json", "-o", str(out),
                 "--no-progress", "--layers", "*layer.0.*,*layer.5.*"]) == 0
    data = json.loads(out.read_text())
    api = hts.analyze(case.path, base=case.base_path, layers=["*layer.0.*", "*layer.5.*"])
    got = {(r["longname"], r["role"]): r for r in data["layers"] if r["status"] == "success"}
    want = {(r["longname"], r["role"]): r for r in api.rows if r["status"] == "success"}
    assert set(got) == set(want) and len(got) == 6
    assert sorted(role for _, role in got) == ["base", "base", "lora_delta", "lora_delta", "merged", "merged"]
    for k, r in want.items():
        assert got[k]["alpha"] == pytest.approx(r["alpha"]) and got[k]["layer_id"] == r["layer_id"]
    assert data["options"]["base"] == str(case.base_path)
    # the summary is over the updates; each role's and the mean change are beside it
    deltas = [r["alpha"] for r in want.values() if r["role"] == "lora_delta"]
    assert data["summary"]["alpha"] == pytest.approx(np.mean(deltas))
    by_role = data["summary_by_role"]
    assert set(by_role) == {"lora_delta", "base", "merged", "change"}
    assert by_role["base"]["alpha"] == pytest.approx(np.mean([r["alpha"] for r in want.values() if r["role"] == "base"]))
    assert by_role["change"]["delta_alpha"] == pytest.approx(by_role["merged"]["alpha"] - by_role["base"]["alpha"])


def test_analyze_base_table_shows_roles_and_changes(peft_adapter, capsys):
    case = peft_adapter("minilm", r=4, lora_alpha=8, target_modules=["query"])
    assert main(["analyze", str(case.path), "--base", str(case.base_path), "--no-progress",
                 "--layers", "*layer.2.*"]) == 0
    out = capsys.readouterr().out
    assert "role" in out and "lora_scale" in out and "delta_alpha" in out
    for suffix in (".lora_delta", ".base", ".merged"):
        assert f"encoder.layer.2.attention.self.query{suffix}" in out


def test_analyze_base_fine_tune_npz(tmp_path, capsys):
    rng = np.random.default_rng(3)
    base = {"a.weight": rng.standard_normal((40, 30)), "b.weight": rng.standard_normal((30, 40))}
    tuned = {k: v + 0.1 * rng.standard_normal(v.shape) for k, v in base.items()}
    np.savez(tmp_path / "base.npz", **base)
    np.savez(tmp_path / "tuned.npz", **tuned)
    assert main(["analyze", str(tmp_path / "tuned.npz"), "--base", str(tmp_path / "base.npz"), "--format", "csv",
                 "--no-progress"]) == 0
    import io

    import pandas as pd

    df = pd.read_csv(io.StringIO(capsys.readouterr().out))
    row = df[df.key == "a.weight"].iloc[0]
    want = np.sort(np.linalg.svd(tuned["a.weight"] - base["a.weight"], compute_uv=False) ** 2)
    assert row["role"] == "delta"
    assert row["lambda_max"] == pytest.approx(want[-1], rel=1e-9)
    assert np.isfinite(row["delta_alpha"])


def test_report_base_writes_roles(peft_adapter, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    case = peft_adapter("minilm", r=4, lora_alpha=8, target_modules=["query"])
    html_path, json_path = tmp_path / "r.html", tmp_path / "r.json"
    assert main(["report", str(case.path), "--base", str(case.base_path), "-o", str(html_path), "--json",
                 str(json_path), "--no-progress", "--layers", "*layer.1.*", "--worst", "3"]) == 0
    text = html_path.read_text()
    assert "encoder.layer.1.attention.self.query.merged" in text and "lora_delta" in text
    rows = json.loads(json_path.read_text())["layers"]
    ids = [r["layer_id"] for r in rows]
    assert len(ids) == len(set(ids))  # base and merged rows have their own layer ids


def test_missing_targets_and_base_are_named(peft_adapter, tmp_path, capsys):
    case = peft_adapter("minilm", r=4, lora_alpha=8, target_modules=["query"])
    from _models import minilm_state_dict

    partial = {k: v.numpy() for k, v in minilm_state_dict().items()
               if "layer.3.attention.self.query" not in k and "layer.4.attention.self.query" not in k}
    np.savez(tmp_path / "partial.npz", **partial)
    assert main(["analyze", str(case.path), "--base", str(tmp_path / "partial.npz"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "2 LoRA target(s) not in the base model" in err
    assert "encoder.layer.3.attention.self.query.weight" in err and "encoder.layer.4.attention.self.query.weight" in err
    missing = tmp_path / "no-such-model.safetensors"
    assert main(["analyze", str(case.path), "--base", str(missing), "--no-progress"]) == 1
    assert str(missing) in capsys.readouterr().err
    assert main(["diff", str(missing), str(case.path)]) == 1
    assert str(missing) in capsys.readouterr().err


def test_report_base_vs_tuned_section(peft_adapter, tmp_path):
    """The HTML report of an analysis with base=: role, lora_scale and delta_alpha columns in the layer table,
    the 'Base vs tuned' section (means per role, mean change, one row per update) and summary_by_role in the
    embedded JSON."""
    pytest.importorskip("matplotlib")
    import re

    case = peft_adapter("minilm", r=4, lora_alpha=8, target_modules=["query"])
    result = hts.analyze(case.path, base=case.base_path, layers=["*layer.4.*"])
    text = result.to_html(worst=2)
    assert "<h2>Base vs tuned</h2>" in text
    head = re.search(r'<table class="sortable" id="layers"><thead><tr>(.*?)</tr>', text).group(1)
    for column in ("role", "lora_scale", "delta_alpha"):
        assert f"<th>{column}</th>" in head
    changes = re.search(r'<table class="sortable" id="changes">(.*?)</table>', text, re.S).group(1)
    assert changes.count("<tr>") == 2  # header + the one lora_delta row
    assert "encoder.layer.4.attention.self.query.lora_delta" in changes and "merged_alpha" in changes
    data = json.loads(re.search(r'<script type="application/json" id="hts-data">(.*?)</script>', text,
                                re.S).group(1))
    assert set(data["summary_by_role"]) == {"lora_delta", "base", "merged", "change"}
    assert {r["role"] for r in data["layers"]} == {"lora_delta", "base", "merged"}
    # without a base: no such section, and no role column for a plain model
    plain = hts.analyze(case.base_path, layers=["*layer.4.attention.self.query*"]).to_html(worst=1)
    assert "Base vs tuned" not in plain and "<th>role</th>" not in plain


def test_adapter_alone_rows_say_lora_delta(peft_adapter, capsys):
    case = peft_adapter("minilm", r=4, lora_alpha=8, target_modules=["query"])
    result = hts.analyze(case.path)
    assert {r["role"] for r in result.rows} == {"lora_delta"}
    assert result.summary_by_role.keys() == {"lora_delta"}
    assert main(["analyze", str(case.path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert {"role", "lora_rank", "lora_scale"} <= set(header) and "delta_alpha" not in header


def test_cli_diff_table_has_ids_roles_and_changes(peft_adapter, capsys):
    case = peft_adapter("minilm", r=4, lora_alpha=8, target_modules=["query"])
    assert main(["diff", str(case.base_path), str(case.path), "--layers", "*layer.0.*"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["layer_id", "longname", "role"]
    ids = [int(line.split()[0]) for line in lines[1:4]]
    assert len(set(ids)) == 3
    assert any(line.startswith("summary of the updates: ") for line in lines)
    assert any(line.startswith("mean change: ") for line in lines)


def test_distances_base_vs_adapter_use_the_merged_weights(peft_adapter, capsys):
    """hts.distances(base, adapter) (and hts diff --distances) compares W with W + s·B·A, not with ΔW."""
    case = peft_adapter("minilm", r=4, lora_alpha=8, target_modules=["query"])
    d = hts.distances(case.base_path, case.path, layers=["*layer.3.attention.self.query*"], esd=False)
    (row,) = [r for r in d.rows if r["status"] == "success"]
    key = "encoder.layer.3.attention.self.query.weight"
    assert row["key"] == row["base_key"] == key
    want = np.linalg.norm(case.merged_state[key] - case.base_state[key])
    assert row["raw"] == pytest.approx(want, rel=1e-4)  # peft's merge is float32
    assert row["cka"] > 0.99
    reverse = hts.distances(case.path, case.base_path, esd=False)
    assert [r["raw"] for r in reverse.rows if r["status"] == "success"][3] == pytest.approx(row["raw"], rel=1e-12)
    assert main(["diff", str(case.base_path), str(case.path), "--distances", "--layers", "*layer.3.*"]) == 0
    assert "distances:" in capsys.readouterr().out


def test_describe_adapter_lists_updates_with_rank_scale_and_factor_bytes(peft_adapter, capsys):
    from safetensors.numpy import load_file

    case = peft_adapter("minilm", r=4, lora_alpha=8, target_modules=["query"])
    stored = load_file(str(case.path / "adapter_model.safetensors"))
    rows = {r["key"]: r for r in hts.open(case.path).rows()}
    key = "encoder.layer.2.attention.self.query.weight"
    a = stored["base_model.model.encoder.layer.2.attention.self.query.lora_A.weight"]
    b = stored["base_model.model.encoder.layer.2.attention.self.query.lora_B.weight"]
    assert rows[key]["bytes"] == a.nbytes + b.nbytes  # the factors as stored, not the dense ΔW
    assert rows[key]["lora_rank"] == 4 and rows[key]["lora_scale"] == 2.0 and rows[key]["shape"] == "384x384"
    assert main(["describe", str(case.path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["layer_id", "longname"] and "lora_scale" in lines[0]
    assert "encoder.layer.2.attention.self.query.lora_delta" in lines[3]


def test_alpha_change_figure(tmp_path):
    """The base-vs-tuned figure: per update row, the base alpha and the tuned alpha joined by a segment."""
    pytest.importorskip("matplotlib")
    from hts.report.diff_plots import alpha_change_by_layer

    rng = np.random.default_rng(7)
    base = {f"l{i}.weight": rng.standard_t(4, size=(120, 80)) for i in range(3)}
    tuned = {k: v + 0.5 * rng.standard_t(3, size=v.shape) for k, v in base.items()}
    result = hts.analyze(tuned, base=base)
    fig = alpha_change_by_layer(result)
    ax = fig.axes[0]
    base_pts, tuned_pts = (c.get_offsets() for c in ax.collections)
    rows = [r for r in result.rows if r["role"] == "delta"]
    assert list(base_pts[:, 1]) == pytest.approx([r["base_alpha"] for r in rows])
    assert list(tuned_pts[:, 1]) == pytest.approx([r["tuned_alpha"] for r in rows])
    segments = [ln for ln in ax.lines if len(ln.get_xdata()) == 2 and ln.get_xdata()[0] == ln.get_xdata()[1]]
    assert len(segments) == 3
    assert "alpha before and after fine-tuning" in result.to_html()
