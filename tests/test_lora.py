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


# -- real adapters written by peft ----------------------------------------------------------------------------
try:  # the tests above need neither; those below are skipped (not the module) without peft
    import peft
    import torch
except ImportError:  # pragma: no cover - peft and torch are in the test extra
    peft = torch = None

needs_peft = pytest.mark.skipif(peft is None, reason="needs peft and torch (pip install peft after torch)")


def _train(model, inputs, steps=3, lr=1e-2):
    torch.manual_seed(0)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        out = model(*inputs)
        out = out[0] if isinstance(out, (tuple, list)) else getattr(out, "last_hidden_state", out)
        loss = (out.float() ** 2).mean()
        loss.backward()
        opt.step()


def _minilm_inputs():
    torch.manual_seed(1)
    ids = torch.randint(0, 1000, (2, 12))
    return (ids, torch.zeros_like(ids))


@pytest.fixture(scope="module")
def minilm():
    from _models import minilm_dir, minilm_module

    return minilm_dir() / "model.safetensors", minilm_module


def _make_adapter(tmp_path, module_factory, inputs, **lora):
    torch.manual_seed(0)
    base = module_factory()
    base_state = {k: v.detach().clone() for k, v in base.state_dict().items()}
    model = peft.get_peft_model(base, peft.LoraConfig(**lora))
    _train(model, inputs)
    model.save_pretrained(tmp_path / "adapter")
    merged = model.merge_and_unload()
    merged_state = {k: v.detach().double().numpy() for k, v in merged.state_dict().items()}
    return tmp_path / "adapter", base_state, merged_state


@needs_peft
@pytest.mark.parametrize("variant", [
    dict(r=4, lora_alpha=8),
    dict(r=8, lora_alpha=4, use_rslora=True),
    dict(r=4, lora_alpha=8, rank_pattern={"value": 2}, alpha_pattern={r"encoder\.layer\.1\.attention\.self\.query": 3}),
])
def test_minilm_adapter_delta_matches_peft_merge(tmp_path, minilm, variant):
    base_file, factory = minilm
    adapter, base_state, merged = _make_adapter(
        tmp_path, factory, _minilm_inputs(), target_modules=["query", "value"], init_lora_weights=True, **variant)
    inv = hts.open(adapter)
    keys = [t.key for t in inv]
    assert not any("lora_" in k for k in keys)  # factors never listed as layers
    targets = [t for t in inv if t.lora is not None]
    assert len(targets) == 12
    for t in targets:
        want = merged[t.key] - base_state[t.key].double().numpy()
        assert np.abs(want).max() > 0  # the optimiser moved B
        # peft's merge is float32: W + ΔW rounded, so the difference carries ~ulp(|W|) of round-off
        np.testing.assert_allclose(t.load(), want, rtol=1e-5, atol=4 * np.finfo(np.float32).eps * np.abs(merged[t.key]).max())
    # the analysis takes the low-rank path: ESD equals the dense numpy eigenvalues of ΔW
    result = hts.analyze(adapter)
    for t in targets:
        dense = np.sort(np.linalg.svd(t.load(), compute_uv=False) ** 2)
        got = result.esd(t.longname)
        np.testing.assert_allclose(got, dense, rtol=1e-9, atol=1e-12 * dense.max() * 384)
        row = next(r for r in result.rows if r["longname"] == t.longname)
        assert row["lora_scale"] == t.lora.scale and row["lora_rank"] == t.lora.rank
    if "rank_pattern" in variant:
        value = next(t for t in targets if t.key.endswith("layer.0.attention.self.value.weight"))
        query1 = next(t for t in targets if t.key.endswith("layer.1.attention.self.query.weight"))
        assert value.lora.rank == 2 and value.lora.scale == 8 / 2
        assert query1.lora.scale == 3 / 4
    if variant.get("use_rslora"):
        assert targets[0].lora.scale == pytest.approx(4 / np.sqrt(8))


@needs_peft
def test_minilm_adapter_with_base_side_by_side(tmp_path, minilm):
    base_file, factory = minilm
    adapter, base_state, merged = _make_adapter(tmp_path, factory, _minilm_inputs(), r=4, lora_alpha=8,
                                                target_modules=["query"])
    result = hts.analyze(adapter, base=base_file)
    roles = [r["role"] for r in result.rows]
    assert roles.count("lora_delta") == roles.count("base") == roles.count("merged") == 6
    for r in result.rows:
        if r["role"] == "merged":
            want = np.sort(np.linalg.svd(merged[r["key"]], compute_uv=False) ** 2)
            np.testing.assert_allclose(result.esd(r["longname"]), want, rtol=1e-7, atol=1e-9 * want.max())
        if r["role"] == "lora_delta":
            module = r["longname"][: -len(".lora_delta")]
            base_row = next(x for x in result.rows if x["longname"] == f"{module}.base")
            merged_row = next(x for x in result.rows if x["longname"] == f"{module}.merged")
            assert r["delta_alpha"] == pytest.approx(merged_row["alpha"] - base_row["alpha"], nan_ok=True)
    json.loads(result.to_json())


@needs_peft
def test_adapter_targets_missing_from_base_is_an_error(tmp_path, minilm):
    base_file, factory = minilm
    adapter, _, _ = _make_adapter(tmp_path, factory, _minilm_inputs(), r=2, lora_alpha=2, target_modules=["key"])
    from _models import minilm_state_dict

    partial = {k: v.numpy() for k, v in minilm_state_dict().items() if "layer.3.attention.self.key" not in k}
    with pytest.raises(hts.ModelFileError, match=r"1 LoRA target\(s\) not in the base model: "
                                                 r"encoder\.layer\.3\.attention\.self\.key\.weight"):
        hts.analyze(adapter, base=partial)


@needs_peft
def test_dora_and_modules_to_save_are_listed_with_reasons(tmp_path, minilm):
    _, factory = minilm
    adapter, _, merged = _make_adapter(tmp_path, factory, _minilm_inputs(), r=2, lora_alpha=4,
                                       target_modules=["query"], use_dora=True, modules_to_save=["pooler.dense"])
    result = hts.analyze(adapter)
    skipped = [r for r in result.rows if r["status"] == "skipped"]
    assert skipped and all("DoRA" in r["reason"] for r in skipped if "lora" in r["key"])
    full = [r for r in result.rows if r["key"].startswith("pooler.dense")]
    assert full and full[0]["status"] == "success" and "lora_scale" not in full[0]


@needs_peft
@pytest.mark.filterwarnings("ignore::FutureWarning")  # transformers' own deprecations inside peft
def test_gpt2_conv1d_fan_in_fan_out(tmp_path):
    transformers = pytest.importorskip("transformers")
    cfg = transformers.GPT2Config(n_layer=2, n_embd=48, n_head=4, vocab_size=100, n_positions=32,
                                 bos_token_id=0, eos_token_id=0)

    def factory():
        torch.manual_seed(0)
        return transformers.GPT2Model(cfg)

    ids = torch.randint(0, 100, (2, 10), generator=torch.Generator().manual_seed(0))
    adapter, base_state, merged = _make_adapter(tmp_path, factory, (ids,), r=4, lora_alpha=8,
                                                target_modules=["c_attn"], fan_in_fan_out=True)
    targets = [t for t in hts.open(adapter) if t.lora is not None]
    assert len(targets) == 2 and all(t.layer_type == "conv1d" and t.orientation == "in_out" for t in targets)
    for t in targets:
        want = merged[t.key] - base_state[t.key].double().numpy()
        assert t.shape == want.shape == (48, 144)
        # peft's merge is float32: W + ΔW rounded, so the difference carries ~ulp(|W|) of round-off
        np.testing.assert_allclose(t.load(), want, rtol=1e-5, atol=4 * np.finfo(np.float32).eps * np.abs(merged[t.key]).max())
    # base from a real safetensors file written by transformers
    base = factory()
    base.save_pretrained(tmp_path / "base")
    result = hts.analyze(adapter, base=tmp_path / "base")
    assert sum(r["role"] == "merged" for r in result.rows) == 2


def test_dense_update_orientation():
    b, a = np.arange(6.0).reshape(3, 2), np.arange(8.0).reshape(2, 4)
    np.testing.assert_array_equal(dense_update(b, a, 2.0), 2 * b @ a)
    np.testing.assert_array_equal(dense_update(b, a, 2.0, fan_in_fan_out=True), (2 * b @ a).T)
