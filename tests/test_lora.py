"""LoRA / PEFT adapters: the low-rank eigenvalue path against dense numpy, and real adapters written by ``peft``
(on all-MiniLM-L6-v2's real weights and a tiny generated GPT-2) against peft's own merge."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hts
from hts.lora import LoraSettings, dense_update, lowrank_eigenvalues, lowrank_singular_values


def _dense_eigenvalues(b, a, s):
    w = s * (b.astype(np.float64) @ a.astype(np.float64))
    return np.sort(np.linalg.svd(w, compute_uv=False) ** 2)


@settings(max_examples=60, deadline=None)
@given(out=st.integers(1, 70), inp=st.integers(1, 70), r=st.integers(1, 12), seed=st.integers(0, 2**32 - 1),
       scale=st.floats(1e-3, 1e3), dtype=st.sampled_from([np.float32, np.float64]),
       degenerate=st.sampled_from(["none", "zero_b", "repeated_col"]))
def test_lowrank_eigenvalues_match_dense_numpy(out, inp, r, seed, scale, dtype, degenerate):
    rng = np.random.default_rng(seed)
    b = rng.standard_normal((out, r)).astype(dtype)
    a = rng.standard_normal((r, inp)).astype(dtype)
    if degenerate == "zero_b":
        b[:] = 0
    elif degenerate == "repeated_col" and r > 1:
        b[:, 1] = b[:, 0]
    got = lowrank_eigenvalues(b, a, scale)
    want = _dense_eigenvalues(b, a, scale)
    assert got.shape == want.shape == (min(out, inp),)
    assert np.all(np.diff(got) >= 0)
    tol = 1e-12 * max(want.max(), 1e-300) * max(out, inp)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=tol)


def test_lowrank_rejects_bad_factors():
    with pytest.raises(ValueError, match="do not chain"):
        lowrank_singular_values(np.ones((4, 3)), np.ones((2, 5)))
    with pytest.raises(ValueError, match="NaN"):
        lowrank_singular_values(np.full((4, 2), np.nan), np.ones((2, 5)))


def test_settings_scale_patterns_and_rslora():
    cfg = LoraSettings.from_config({"r": 8, "lora_alpha": 16, "rank_pattern": {"q_proj": 4},
                                    "alpha_pattern": {r"layers\.1\.v_proj": 2}})
    assert cfg.scale("model.layers.0.q_proj") == 16 / 4
    assert cfg.scale("model.layers.1.v_proj") == 2 / 8
    assert cfg.scale("model.layers.0.v_proj") == 16 / 8
    rs = LoraSettings.from_config({"r": 16, "lora_alpha": 8, "use_rslora": True})
    assert rs.scale("x") == pytest.approx(8 / 4)
    with pytest.raises(ValueError, match="lora_alpha"):
        LoraSettings.from_config({"lora_alpha": "big"})


# -- real adapters written by peft (tests/_peft_adapters.py, the session-scoped ``peft_adapter`` fixture) ---------
from _peft_adapters import float32_merge_atol, merged_delta  # noqa: E402


def _check_targets_against_peft(case, targets):
    """Every ΔW equals peft's merge_and_unload() weight minus W, and the optimiser moved every B."""
    for t in targets:
        want = merged_delta(case, t.key)
        assert t.shape == want.shape
        assert np.abs(want).max() > 0
        np.testing.assert_allclose(t.load(), want, rtol=1e-5, atol=float32_merge_atol(case, t.key))


def _check_lowrank_esds(path, targets):
    """hts.analyze takes the low-rank path: each ESD equals the dense numpy eigenvalues of ΔW."""
    result = hts.analyze(path)
    for t in targets:
        dense = np.sort(np.linalg.svd(t.load(), compute_uv=False) ** 2)
        dense = dense[-min(t.shape):]
        np.testing.assert_allclose(result.esd(t.longname), dense, rtol=1e-9, atol=1e-12 * dense.max() * max(t.shape))
        row = next(r for r in result.rows if r["longname"] == t.longname)
        assert row["lora_scale"] == t.lora.scale and row["lora_rank"] == t.lora.rank
    return result


@pytest.mark.parametrize("variant", [
    dict(r=4, lora_alpha=8),
    dict(r=8, lora_alpha=4, use_rslora=True),
    dict(r=4, lora_alpha=8, rank_pattern={"value": 2}, alpha_pattern={r"encoder\.layer\.1\.attention\.self\.query": 3}),
])
def test_minilm_adapter_delta_matches_peft_merge(peft_adapter, variant):
    case = peft_adapter("minilm", target_modules=["query", "value"], **variant)
    inv = hts.open(case.path)
    assert not any("lora_" in t.key for t in inv)  # factors never listed as layers
    targets = [t for t in inv if t.lora is not None]
    assert len(targets) == 12
    _check_targets_against_peft(case, targets)
    _check_lowrank_esds(case.path, targets)
    if "rank_pattern" in variant:
        value = next(t for t in targets if t.key.endswith("layer.0.attention.self.value.weight"))
        query1 = next(t for t in targets if t.key.endswith("layer.1.attention.self.query.weight"))
        query0 = next(t for t in targets if t.key.endswith("layer.0.attention.self.query.weight"))
        assert value.lora.rank == 2 and value.lora.scale == 8 / 2
        assert query1.lora.scale == 3 / 4 and query0.lora.scale == 8 / 4
    if variant.get("use_rslora"):
        assert targets[0].lora.scale == pytest.approx(4 / np.sqrt(8))


def test_minilm_adapter_with_base_side_by_side(peft_adapter):
    case = peft_adapter("minilm", r=4, lora_alpha=8, target_modules=["query"])
    result = hts.analyze(case.path, base=case.base_path)
    roles = [r["role"] for r in result.rows]
    assert roles.count("lora_delta") == roles.count("base") == roles.count("merged") == 6
    assert len({r["layer_id"] for r in result.rows}) == len(result.rows)
    for r in result.rows:
        if r["role"] == "merged":  # the merged row's spectrum is that of peft's merge_and_unload() weight
            want = np.sort(np.linalg.svd(case.merged_state[r["key"]], compute_uv=False) ** 2)
            np.testing.assert_allclose(result.esd(r["layer_id"]), want, rtol=1e-7, atol=1e-9 * want.max())
        if r["role"] == "base":
            want = np.sort(np.linalg.svd(case.base_state[r["key"]], compute_uv=False) ** 2)
            np.testing.assert_allclose(result.esd(r["layer_id"]), want, rtol=1e-9, atol=1e-12 * want.max())
        if r["role"] == "lora_delta":
            module = r["longname"][: -len(".lora_delta")]
            base_row = next(x for x in result.rows if x["longname"] == f"{module}.base")
            merged_row = next(x for x in result.rows if x["longname"] == f"{module}.merged")
            assert r["delta_alpha"] == pytest.approx(merged_row["alpha"] - base_row["alpha"], nan_ok=True)
            assert r["base_key"] == r["key"]
    json.loads(result.to_json())
    # the over-/under-trained counts, like the summary, are the update rows' only
    updates = [r for r in result.rows if r["role"] == "lora_delta"]
    assert result.counts["under_trained"] == sum(r["warning"] == "under-trained" for r in updates)
    assert result.counts["over_trained"] == sum(r["warning"] == "over-trained" for r in updates)
    # alpha by depth keeps the roles apart: one legend entry per role (and layer type)
    from hts.report import plots
    fig = plots.alpha_by_layer(result)
    labels = {t.get_text() for t in fig.axes[0].get_legend().get_texts()}
    assert {label.split()[0] for label in labels} == {"lora_delta", "base", "merged"}, labels


def test_adapter_targets_missing_from_base_is_an_error(peft_adapter):
    case = peft_adapter("minilm", r=2, lora_alpha=2, target_modules=["key"])
    partial = {k: v for k, v in case.base_state.items() if "layer.3.attention.self.key" not in k}
    with pytest.raises(hts.ModelFileError, match=r"1 LoRA target\(s\) not in the base model: "
                                                 r"encoder\.layer\.3\.attention\.self\.key\.weight"):
        hts.analyze(case.path, base=partial)


def test_dora_and_modules_to_save_are_listed_with_reasons(peft_adapter):
    case = peft_adapter("minilm", r=2, lora_alpha=4, target_modules=["query"], use_dora=True,
                        modules_to_save=["pooler.dense"])
    result = hts.analyze(case.path)
    skipped = [r for r in result.rows if r["status"] == "skipped"]
    lora = [r for r in skipped if "lora" in r["key"]]
    assert len(lora) == 6 * 3 and all("DoRA" in r["reason"] for r in lora)  # A, B and the magnitude vector
    full = [t for t in hts.open(case.path) if t.key.startswith("pooler.dense")]
    assert len(full) == 1 and full[0].lora is None
    # the saved copy is the trained one: peft's merged model holds the same weight
    np.testing.assert_array_equal(np.asarray(full[0].load(), dtype=np.float64), case.merged_state["pooler.dense.weight"])
    row = next(r for r in result.rows if r["key"] == full[0].key)
    assert row["status"] == "success" and "lora_scale" not in row


def test_adapter_model_bin_reads_as_the_safetensors(peft_adapter, tmp_path):
    """An adapter saved as adapter_model.bin (torch pickle, peft's safe_serialization=False) gives the same
    updates as the safetensors one; read with weights_only=True."""
    import shutil

    import torch
    from safetensors.torch import load_file

    case = peft_adapter("minilm", r=4, lora_alpha=8, target_modules=["query"])
    folder = tmp_path / "bin-adapter"
    folder.mkdir()
    shutil.copy(case.path / "adapter_config.json", folder)
    torch.save(load_file(str(case.path / "adapter_model.safetensors")), folder / "adapter_model.bin")
    want = {t.key: t for t in hts.open(case.path) if t.lora is not None}
    got = {t.key: t for t in hts.open(folder) if t.lora is not None}
    assert got.keys() == want.keys() and len(got) == 6
    for key, t in got.items():
        assert t.lora.scale == want[key].lora.scale
        np.testing.assert_array_equal(t.load(), want[key].load())


@pytest.mark.filterwarnings("ignore::FutureWarning")  # transformers' own deprecations inside peft
def test_gpt2_conv1d_fan_in_fan_out(peft_adapter):
    case = peft_adapter("gpt2", r=4, lora_alpha=8, target_modules=["c_attn"], fan_in_fan_out=True)
    targets = [t for t in hts.open(case.path) if t.lora is not None]
    assert len(targets) == 2 and all(t.layer_type == "conv1d" and t.orientation == "in_out" for t in targets)
    assert all(t.shape == (48, 144) for t in targets)
    _check_targets_against_peft(case, targets)
    _check_lowrank_esds(case.path, targets)
    result = hts.analyze(case.path, base=case.base_path)  # base: a safetensors folder written by transformers
    merged = [r for r in result.rows if r["role"] == "merged"]
    assert len(merged) == 2
    for r in merged:
        want = np.sort(np.linalg.svd(case.merged_state[r["key"]], compute_uv=False) ** 2)
        np.testing.assert_allclose(result.esd(r["layer_id"]), want, rtol=1e-7, atol=1e-9 * want.max())


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_llama_rectangular_targets_patterns_and_embedding(peft_adapter):
    """LLaMA: q/k/v/o (k, v are 32 × 64 with grouped-query attention), gate/up/down (96 × 64, 64 × 96), the
    token embedding (lora_embedding_A/B, ΔW = s·(B·A)ᵀ), a rank pattern and an alpha pattern (regex)."""
    case = peft_adapter("llama", r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                                                      "gate_proj", "up_proj", "down_proj",
                                                                      "embed_tokens"],
                        rank_pattern={"down_proj": 6}, alpha_pattern={r"layers\.1\.self_attn\.k_proj": 2})
    targets = {t.key: t for t in hts.open(case.path) if t.lora is not None}
    assert len(targets) == 2 * 7 + 1
    assert targets["layers.0.self_attn.k_proj.weight"].shape == (32, 64)
    assert targets["layers.0.mlp.down_proj.weight"].lora.rank == 6
    assert targets["layers.0.mlp.down_proj.weight"].lora.scale == 8 / 6
    assert targets["layers.1.self_attn.k_proj.weight"].lora.scale == 2 / 4
    assert targets["layers.0.self_attn.k_proj.weight"].lora.scale == 8 / 4
    emb = targets["embed_tokens.weight"]
    assert emb.layer_type == "embedding" and emb.shape == (128, 64)
    _check_targets_against_peft(case, targets.values())
    _check_lowrank_esds(case.path, targets.values())
    result = hts.analyze(case.path, base=case.base_path, layers=["*layers.1.*"])
    assert {r["role"] for r in result.rows if r["status"] == "success"} == {"lora_delta", "base", "merged"}
    for r in result.rows:
        if r["role"] == "merged" and r["status"] == "success":
            want = np.sort(np.linalg.svd(case.merged_state[r["key"]], compute_uv=False) ** 2)
            np.testing.assert_allclose(result.esd(r["layer_id"]), want, rtol=1e-7, atol=1e-9 * want.max())


def test_dense_update_orientation():
    b, a = np.arange(6.0).reshape(3, 2), np.arange(8.0).reshape(2, 4)
    np.testing.assert_array_equal(dense_update(b, a, 2.0), 2 * b @ a)
    np.testing.assert_array_equal(dense_update(b, a, 2.0, fan_in_fan_out=True), (2 * b @ a).T)
