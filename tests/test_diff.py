"""Base vs tuned (``hts.analyze(tuned, base=...)``, ``hts diff``) and ``hts.distances``, against numpy."""

from __future__ import annotations

import json

import numpy as np
import pytest

import hts
from hts.cli import main
from hts.diff import match_names
from hts.weight_distances import esd_distances, matrix_distance


def _models(tmp_path):
    rng = np.random.default_rng(0)
    base = {"enc.0.weight": rng.standard_normal((64, 32)), "enc.1.weight": rng.standard_normal((48, 64)),
            "head.weight": rng.standard_normal((10, 48)), "conv.weight": rng.standard_normal((16, 8, 3, 3))}
    tuned = {k: v + 0.05 * rng.standard_t(3, size=v.shape) for k, v in base.items()}
    tuned["head.weight"] = rng.standard_normal((12, 48))  # a new head: shape differs
    tuned["extra.weight"] = rng.standard_normal((20, 20))  # only in the tuned model
    del tuned["enc.1.weight"]  # only in the base
    np.savez(tmp_path / "base.npz", **base)
    np.savez(tmp_path / "tuned.npz", **tuned)
    return base, tuned


def test_match_names_rules():
    base = ["bert.encoder.q.weight", "encoder.k.weight", "a.v.weight", "b.v.weight"]
    names = ["encoder.q.weight", "base_model.model.encoder.k.weight", "v.weight", "missing.weight"]
    assert match_names(names, base) == {"encoder.q.weight": "bert.encoder.q.weight",
                                        "base_model.model.encoder.k.weight": "encoder.k.weight"}


def test_delta_rows_and_metric_changes(tmp_path):
    base, tuned = _models(tmp_path)
    result = hts.analyze(tmp_path / "tuned.npz", base=tmp_path / "base.npz")
    rows = {r["key"]: r for r in result.rows}
    row = rows["enc.0.weight"]
    delta = tuned["enc.0.weight"] - base["enc.0.weight"]
    want = np.sort(np.linalg.svd(delta, compute_uv=False) ** 2)
    np.testing.assert_allclose(result.esd(row["longname"]), want, rtol=1e-9, atol=1e-12 * want.max())
    alone_b = hts.analyze({"enc.0.weight": base["enc.0.weight"]}).rows[0]
    alone_t = hts.analyze({"enc.0.weight": tuned["enc.0.weight"]}).rows[0]
    assert row["delta_alpha"] == pytest.approx(alone_t["alpha"] - alone_b["alpha"])
    assert row["delta_log_norm"] == pytest.approx(alone_t["log_norm"] - alone_b["log_norm"])
    assert row["stable_rank"] == pytest.approx((want.sum() / want.max()))
    assert "differs from the base" in rows["head.weight"]["reason"]
    assert rows["extra.weight"]["reason"] == "no tensor of this name in the base model"
    assert rows["enc.1.weight"]["role"] == "base" and "only in the base" in rows["enc.1.weight"]["reason"]
    assert rows["conv.weight"]["status"] == "success"
    json.loads(result.to_json())


def test_cli_diff(tmp_path, capsys):
    _models(tmp_path)
    assert main(["diff", str(tmp_path / "base.npz"), str(tmp_path / "tuned.npz"), "--distances"]) == 0
    out = capsys.readouterr().out
    assert "delta_alpha" in out and "not compared: head.weight" in out and "cka" in out
    assert main(["diff", str(tmp_path / "base.npz"), str(tmp_path / "tuned.npz"), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {r["key"] for r in data["layers"]} >= {"enc.0.weight", "head.weight", "extra.weight", "enc.1.weight"}


def test_distances_against_numpy(tmp_path):
    base, tuned = _models(tmp_path)
    d = hts.distances(tmp_path / "base.npz", tmp_path / "tuned.npz")
    rows = {r["key"]: r for r in d.rows}
    w1, w2 = base["enc.0.weight"], tuned["enc.0.weight"]
    assert rows["enc.0.weight"]["raw"] == pytest.approx(np.linalg.norm(w1 - w2))
    assert rows["enc.0.weight"]["euclidean"] == pytest.approx(np.linalg.norm(w1 - w2))
    cka = np.linalg.norm(w1.T @ w2) / np.sqrt(np.linalg.norm(w1.T @ w1) * np.linalg.norm(w2 @ w2.T))
    assert rows["enc.0.weight"]["cka"] == pytest.approx(cka)
    c1, c2 = base["conv.weight"], tuned["conv.weight"]
    slices = [(c1[:, :, i, j], c2[:, :, i, j]) for i in range(3) for j in range(3)]
    assert rows["conv.weight"]["euclidean"] == pytest.approx(np.mean([np.linalg.norm(a - b) for a, b in slices]))
    assert rows["conv.weight"]["raw"] == pytest.approx(np.linalg.norm(c1 - c2))
    assert rows["head.weight"]["status"] == "skipped" and "shape differs" in rows["head.weight"]["reason"]
    assert d.summary["raw"] == pytest.approx(np.mean([r["raw"] for r in d.rows if r["status"] == "success"]))
    e1 = np.linalg.svd(w1, compute_uv=False) ** 2
    assert rows["enc.0.weight"]["esd_ks"] == pytest.approx(esd_distances(e1, np.linalg.svd(w2, compute_uv=False) ** 2)["esd_ks"], rel=1e-9)


def test_esd_distances_against_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    a, b = rng.pareto(2.5, 300) + 0.01, rng.pareto(3.5, 200) + 0.02
    d = esd_distances(a, b)
    assert d["esd_ks"] == pytest.approx(stats.ks_2samp(a, b).statistic)
    assert d["esd_wasserstein"] == pytest.approx(stats.wasserstein_distance(np.log10(a), np.log10(b)))
    assert esd_distances(a, a)["esd_wasserstein"] == 0.0


def test_matrix_distance_identical_and_errors():
    w = np.random.default_rng(0).standard_normal((5, 4))
    assert matrix_distance(w, w, "raw") == 0 and matrix_distance(w, w, "cka") == pytest.approx(1.0)
    with pytest.raises(ValueError, match="method"):
        matrix_distance(w, w, "cosine")
    with pytest.raises(ValueError, match="shapes differ"):
        matrix_distance(w, w.T)


def test_base_analysis_shares_one_time_budget(tmp_path, monkeypatch):
    """The update, base and tuned analyses of hts.analyze(tuned, base=...) run under one time budget."""
    import time

    import hts.analysis

    _models(tmp_path)
    full = hts.analyze(tmp_path / "tuned.npz", base=tmp_path / "base.npz", time_budget=600)
    assert any(r["status"] == "success" for r in full.rows)
    budgets = []
    real = hts.analysis.analyze

    def slow(*args, **kwargs):  # each analysis takes 0.3 s of a 0.5 s budget
        budgets.append(kwargs["time_budget"])
        time.sleep(0.3)
        return real(*args, **kwargs)

    monkeypatch.setattr(hts.analysis, "analyze", slow)
    with pytest.raises(hts.Cancelled, match=r"time budget of 0.5 s ran out before the (base|tuned) analysis"):
        hts.diff.analyze_with_base(str(tmp_path / "tuned.npz"), str(tmp_path / "base.npz"), time_budget=0.5)
    assert budgets[0] == pytest.approx(0.5, abs=0.05) and all(b < 0.3 for b in budgets[1:])


def test_base_rows_follow_start_ids(tmp_path, peft_adapter):
    """start_ids shifts every row's id once (updates, skipped tensors, base-only tensors; an adapter's base and
    merged rows), and the ids stay unique."""
    _models(tmp_path)
    plain = hts.analyze(tmp_path / "tuned.npz", base=tmp_path / "base.npz")
    shifted = hts.analyze(tmp_path / "tuned.npz", base=tmp_path / "base.npz", start_ids=10)
    ids = [r["layer_id"] for r in shifted.rows]
    assert ids == [r["layer_id"] + 9 for r in plain.rows] and len(set(ids)) == len(ids)
    case = peft_adapter("minilm", r=2, lora_alpha=2, target_modules=["query"])
    rows = hts.analyze(case.path, base=case.base_path, start_ids=5, layers=["*layer.0.*"]).rows
    assert [r["layer_id"] for r in rows] == [5, 6, 7]
