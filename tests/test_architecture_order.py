"""Issue 18 item 5: tensors of block-structured models read from files come in forward-pass order
(embeddings → blocks by index, attention before MLP → final norm → heads), so "alpha by depth" is depth."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import _st_writer as writer
import hts
from hts.adapters.ordering import architecture_order
from hts.adapters.safetensors_file import natural_key

LLAMA_BLOCK = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
               "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")


def _llama_names(blocks: int) -> list[str]:
    names = ["model.embed_tokens.weight"]
    for i in range(blocks):
        names.append(f"model.layers.{i}.input_layernorm.weight")
        names += [f"model.layers.{i}.{m}.weight" for m in LLAMA_BLOCK[:4]]
        names.append(f"model.layers.{i}.post_attention_layernorm.weight")
        names += [f"model.layers.{i}.{m}.weight" for m in LLAMA_BLOCK[4:]]
    return names + ["model.norm.weight", "lm_head.weight"]


def _llama_tensors(rng, blocks: int) -> dict:
    d, ff, vocab = 48, 96, 160
    shapes = {"q_proj": (d, d), "k_proj": (d // 2, d), "v_proj": (d // 2, d), "o_proj": (d, d),
              "gate_proj": (ff, d), "up_proj": (ff, d), "down_proj": (d, ff)}
    out = {}
    for name in _llama_names(blocks):
        leaf = name.split(".")[-2]
        if leaf in shapes:
            shape = shapes[leaf]
        elif "norm" in leaf:
            shape = (d,)
        else:
            shape = (vocab, d)
        out[name] = rng.standard_t(4, size=shape).astype(np.float32)
    return out


def test_llama_names_in_forward_order_from_any_input_order():
    expected = _llama_names(12)
    for seed in range(5):
        shuffled = list(expected)
        random.Random(seed).shuffle(shuffled)
        assert architecture_order(shuffled) == expected
    # what name order gives, and what this fixes: lm_head first, block 10 before block 2, mlp before attention
    natural = sorted(expected, key=natural_key)
    assert natural[0] == "lm_head.weight" and natural.index("model.layers.2.mlp.down_proj.weight") < \
        natural.index("model.layers.2.self_attn.q_proj.weight")


@pytest.mark.parametrize("names", [
    # BERT: embeddings, encoder layers (query, key, value, attention output, intermediate, output), pooler, head
    ["bert.embeddings.position_embeddings.weight", "bert.embeddings.word_embeddings.weight",
     "bert.encoder.layer.0.attention.self.query.weight", "bert.encoder.layer.0.attention.self.key.weight",
     "bert.encoder.layer.0.attention.self.value.weight", "bert.encoder.layer.0.attention.output.dense.weight",
     "bert.encoder.layer.0.intermediate.dense.weight", "bert.encoder.layer.0.output.dense.weight",
     "bert.encoder.layer.1.attention.self.query.weight", "bert.pooler.dense.weight", "classifier.weight"],
    # GPT-2: wte/wpe, h.N (ln_1, c_attn, c_proj, ln_2, mlp.c_fc, mlp.c_proj), ln_f
    ["transformer.wpe.weight", "transformer.wte.weight", "transformer.h.0.ln_1.weight",
     "transformer.h.0.attn.c_attn.weight", "transformer.h.0.attn.c_proj.weight", "transformer.h.0.ln_2.weight",
     "transformer.h.0.mlp.c_fc.weight", "transformer.h.0.mlp.c_proj.weight", "transformer.h.2.attn.c_attn.weight",
     "transformer.h.11.attn.c_attn.weight", "transformer.ln_f.weight"],
    # an encoder-decoder: encoder blocks before decoder blocks
    ["shared.weight", "encoder.block.0.layer.0.SelfAttention.q.weight", "encoder.block.1.layer.0.SelfAttention.q.weight",
     "decoder.block.0.layer.0.SelfAttention.q.weight", "lm_head.weight"],
    # ResNet: stem, stages, fc last
    ["bn1.weight", "conv1.weight", "layer1.0.conv1.weight", "layer1.0.conv2.weight", "layer2.0.conv1.weight",
     "fc.weight"],
])
def test_known_layouts(names):
    shuffled = list(names)
    random.Random(1).shuffle(shuffled)
    assert architecture_order(shuffled) == names


def test_models_without_blocks_keep_natural_name_order():
    names = ["b.weight", "a10.weight", "a2.weight", "head.weight"]
    assert architecture_order(names) == ["a2.weight", "a10.weight", "b.weight", "head.weight"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="ab._019xyzqkv", min_size=1, max_size=24), max_size=40, unique=True))
def test_order_is_a_deterministic_permutation(names):
    out = architecture_order(names)
    assert sorted(out) == sorted(names)
    assert architecture_order(list(reversed(names))) == out


def _check_forward_order(analysis, blocks: int):
    keys = [r["key"] for r in analysis.rows]
    assert keys == [k for k in _llama_names(blocks) if k in keys]
    weights = [r["key"] for r in analysis.rows if r["status"] != "skipped"]
    assert weights[0] == "model.embed_tokens.weight" and weights[-1] == "lm_head.weight"
    ids = [r["layer_id"] for r in analysis.rows]
    assert ids == sorted(ids)


def test_hf_safetensors_folder_single_and_sharded(tmp_path):
    rng = np.random.default_rng(0)
    blocks = 11  # block 10 must follow block 9, not block 1
    tensors = _llama_tensors(rng, blocks)
    config = {"model_type": "llama", "tie_word_embeddings": False}
    single = tmp_path / "single"
    single.mkdir()
    writer.write(single / "model.safetensors", tensors)
    (single / "config.json").write_text(json.dumps(config))
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    names = sorted(tensors)  # shards by name, as any writer may do
    weight_map = {}
    for s in range(3):
        part = names[s::3]
        writer.write(sharded / f"model-0000{s + 1}-of-00003.safetensors", {n: tensors[n] for n in part})
        weight_map.update({n: f"model-0000{s + 1}-of-00003.safetensors" for n in part})
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"weight_map": dict(sorted(weight_map.items()))}))
    (sharded / "config.json").write_text(json.dumps(config))
    a, b = hts.analyze(single), hts.analyze(sharded)
    _check_forward_order(a, blocks)
    _check_forward_order(b, blocks)
    assert [r["alpha"] for r in a.rows if r["status"] == "success"] == \
        [r["alpha"] for r in b.rows if r["status"] == "success"]
    # the inventory (hts describe) lists the same order
    assert [t.key for t in hts.open(single)] == [r["key"] for r in a.rows]


def test_sharded_torch_bin_keeps_state_dict_order(tmp_path):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    blocks = 3
    tensors = {k: torch.from_numpy(v) for k, v in _llama_tensors(rng, blocks).items()}
    names = list(tensors)  # module order, as model.state_dict() gives it
    half = len(names) // 2
    weight_map = {}
    for i, part in enumerate((names[:half], names[half:])):
        fname = f"pytorch_model-0000{i + 1}-of-00002.bin"
        torch.save({n: tensors[n] for n in part}, tmp_path / fname)
        weight_map.update({n: fname for n in part})
    (tmp_path / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": dict(sorted(weight_map.items()))}))
    (tmp_path / "config.json").write_text(json.dumps({"tie_word_embeddings": False}))
    _check_forward_order(hts.analyze(tmp_path), blocks)
