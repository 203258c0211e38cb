"""GGUF files written by llama.cpp's own Python package (``gguf``), read by hts's reader."""

from __future__ import annotations

import logging
import struct

import numpy as np
import pytest

import hts
from hts.adapters import gguf_file
from hts.adapters.gguf_format import read_gguf

import _gguf_files as g
from _st_writer import write as write_safetensors

gguf = pytest.importorskip("gguf")

NATIVE = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]


def _llama_files(folder, kind: str = "F32"):
    """The same tiny LLaMA as safetensors (HF names) and GGUF (llama.cpp names), both in ``kind``."""
    hf = g.llama_tensors(np.random.default_rng(14))
    if kind == "F16":
        hf = {k: v.astype(np.float16) if v.ndim == 2 else v for k, v in hf.items()}
        st_values = hf
        gg_values = hf
    elif kind == "BF16":
        bits = {k: (v.view(np.uint32) >> 16).astype(np.uint16) for k, v in hf.items() if v.ndim == 2}
        st_values = {k: ("BF16", bits[k].tobytes(), v.shape) if k in bits else v for k, v in hf.items()}
        gg_values = {k: bits.get(k, v) for k, v in hf.items()}
    else:
        st_values = gg_values = hf
    write_safetensors(folder / "model.safetensors", st_values)
    path = g.write(folder / "model.gguf", {g.to_gguf_name(k): v for k, v in gg_values.items()})
    return hf, path, folder / "model.safetensors"


@pytest.fixture
def llama(tmp_path):
    return _llama_files(tmp_path)


def _by_name(analysis):
    return {r["longname"]: r for r in analysis.rows}


@pytest.mark.parametrize("kind", ["F32", "F16", "BF16"])
def test_float_gguf_gives_the_safetensors_rows(tmp_path, kind):
    hf, path, st = _llama_files(tmp_path, kind)
    a, b = hts.analyze(path), hts.analyze(st)
    rows_a, rows_b = _by_name(a), _by_name(b)
    assert set(rows_a) == set(rows_b)
    for name, rb in rows_b.items():
        ra = rows_a[name]
        assert ra["layer_id"] == rb["layer_id"] and ra["status"] == rb["status"]
        if rb["status"] == "success":
            assert ra["alpha"] == pytest.approx(rb["alpha"], abs=1e-12)
            assert ra["log_spectral_norm"] == pytest.approx(rb["log_spectral_norm"], abs=1e-12)
    # the GGUF name is kept as the key, the ggml type is a column
    q = rows_a["model.layers.1.self_attn.q_proj"]
    assert q["key"] == "blk.1.attn_q.weight" and q["quant"] == kind
    assert q["dtype"] == {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[kind]
    assert rows_a["lm_head"]["key"] == "output.weight"


def test_row_permuted_q_proj_has_the_same_spectrum(tmp_path):
    # llama.cpp's converter permutes q/k rows; a row permutation leaves singular values unchanged.
    rng = np.random.default_rng(3)
    w = (rng.standard_t(3, size=(128, 64)) / 8).astype(np.float32)
    perm = rng.permutation(128)
    path = g.write(tmp_path / "p.gguf", {"blk.0.attn_q.weight": w[perm], "blk.0.attn_k.weight": w})
    rows = _by_name(hts.analyze(path))
    assert rows["model.layers.0.self_attn.q_proj"]["alpha"] == pytest.approx(
        rows["model.layers.0.self_attn.k_proj"]["alpha"], rel=1e-9)


@pytest.mark.parametrize("kind", ["F16", "BF16"])
def test_half_precision_tensors(tmp_path, kind):
    rng = np.random.default_rng(5)
    w = rng.standard_normal((48, 32)).astype(np.float32)
    if kind == "F16":
        stored, expected = w.astype(np.float16), w.astype(np.float16)
    else:
        stored = (w.view(np.uint32) >> 16).astype(np.uint16)
        expected = (stored.astype(np.uint32) << 16).view(np.float32)
    path = g.write(tmp_path / "h.gguf", {"blk.0.ffn_up.weight": stored})
    (t,) = hts.open(path)
    assert t.quant == kind and t.shape == (48, 32)
    got = t.load()
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == (np.float16 if kind == "F16" else np.float32)


@pytest.mark.parametrize("type_name", NATIVE)
def test_quantised_tensors_are_bit_identical_to_the_gguf_package(tmp_path, type_name):
    rng = np.random.default_rng(len(type_name) + NATIVE.index(type_name))
    cols = 512
    blocks = g.random_blocks(rng, type_name, 24, cols)
    path = g.write(tmp_path / "q.gguf", {"blk.0.ffn_down.weight": (blocks, type_name)})
    (t,) = hts.open(path)
    assert (t.quant, t.dtype, t.shape, t.stored_bytes) == (type_name, type_name, (24, cols), blocks.nbytes)
    got = t.load()
    ref = g.reference_values(path, "blk.0.ffn_down.weight")
    assert got.dtype == np.float32 and got.shape == ref.shape
    np.testing.assert_array_equal(got.view(np.uint32), ref.view(np.uint32))
    inv = hts.open(path)
    assert inv.rows()[0]["bytes"] == blocks.nbytes and inv.rows()[0]["quant"] == type_name


def test_quantised_tensor_larger_than_one_read_chunk(tmp_path, monkeypatch):
    rng = np.random.default_rng(6)
    blocks = g.random_blocks(rng, "Q6_K", 40, 1024)
    path = g.write(tmp_path / "big.gguf", {"blk.0.ffn_up.weight": (blocks, "Q6_K")})
    monkeypatch.setattr(gguf_file, "CHUNK_BYTES", 3 * blocks.shape[1] + 17)  # several rows per chunk, uneven
    (t,) = hts.open(path)
    np.testing.assert_array_equal(t.load(), g.reference_values(path, "blk.0.ffn_up.weight"))


@pytest.mark.parametrize("type_name", ["IQ4_NL", "IQ4_XS", "IQ2_XXS", "IQ3_S", "TQ2_0"])
def test_other_types_decoded_by_the_gguf_package(tmp_path, type_name):
    rng = np.random.default_rng(7)
    blocks = g.random_blocks(rng, type_name, 8, 256)
    path = g.write(tmp_path / "iq.gguf", {"blk.0.ffn_up.weight": (blocks, type_name)})
    (t,) = hts.open(path)
    assert not t.skip_reason and t.quant == type_name
    np.testing.assert_array_equal(t.load(), g.reference_values(path, "blk.0.ffn_up.weight"))


def test_without_the_gguf_package_other_types_are_skipped_naming_the_type(tmp_path, monkeypatch):
    rng = np.random.default_rng(8)
    path = g.write(tmp_path / "iq.gguf", {"blk.0.ffn_up.weight": (g.random_blocks(rng, "IQ2_XS", 8, 256), "IQ2_XS"),
                                          "blk.0.ffn_down.weight": (g.random_blocks(rng, "Q4_K", 8, 256), "Q4_K")})
    real = gguf_file.importlib.util.find_spec
    monkeypatch.setattr(gguf_file.importlib.util, "find_spec", lambda n, *a: None if n == "gguf" else real(n, *a))
    a = hts.analyze(path)
    rows = _by_name(a)
    up, down = rows["model.layers.0.mlp.up_proj"], rows["model.layers.0.mlp.down_proj"]
    assert up["status"] == "skipped" and "IQ2_XS" in up["reason"] and "hts[gguf]" in up["reason"]
    assert down["status"] == "success"  # the K-quants need no package


def _patch_type(path, tensor_name: str, type_id: int) -> None:
    """Overwrite a tensor's ggml type id in place (found after its name in the tensor infos)."""
    raw = bytearray(path.read_bytes())
    name = tensor_name.encode()
    at = raw.index(struct.pack("<Q", len(name)) + name) + 8 + len(name)
    n_dims = struct.unpack_from("<I", raw, at)[0]
    struct.pack_into("<I", raw, at + 4 + 8 * n_dims, type_id)
    path.write_bytes(bytes(raw))


def test_integer_and_unknown_types_are_listed_with_a_reason(tmp_path):
    w = np.zeros((4, 32), np.float32)
    path = g.write(tmp_path / "t.gguf", {"blk.0.ffn_up.weight": np.arange(128, dtype=np.int32).reshape(4, 32),
                                         "blk.0.ffn_gate.weight": w})
    _patch_type(path, "blk.0.ffn_gate.weight", 99)
    rows = _by_name(hts.analyze(path))
    assert "I32" in rows["model.layers.0.mlp.up_proj"]["reason"]
    assert "unknown ggml type id 99" in rows["model.layers.0.mlp.gate_proj"]["reason"]
    with pytest.raises(hts.ModelFileError, match="unknown ggml type id 99"):
        hts.open(path)[0].load()


def test_mixture_of_experts_stack_is_one_matrix_per_expert(tmp_path):
    rng = np.random.default_rng(9)
    stack = g.random_blocks(rng, "Q8_0", 3 * 64, 128).reshape(3, 64, -1)
    path = g.write(tmp_path / "moe.gguf", {"blk.0.ffn_up_exps.weight": (stack, "Q8_0")})
    inv = hts.open(path)
    assert [t.longname for t in inv] == [f"model.layers.0.mlp.experts.{e}.up_proj" for e in range(3)]
    assert [t.key for t in inv] == [f"blk.0.ffn_up_exps.weight[{e}]" for e in range(3)]
    ref = g.reference_values(path, "blk.0.ffn_up_exps.weight")
    for e, t in enumerate(inv):
        assert t.shape == (64, 128)
        np.testing.assert_array_equal(t.load(), ref[e])


def test_listing_is_a_lazy_sequence_in_forward_pass_order(tmp_path):
    """The records are made on use (``GGUFTensorList``) from the header's columns (``GGUFTensors``): indexing,
    negative indices, slices and iteration give equal records; layer ids count the ``*.weight`` tensors in
    forward-pass order of the transformers names; experts of a stack, an empty tensor and a bias take their
    places."""
    from hts.adapters.gguf_file import GGUFTensorList
    from hts.adapters.gguf_format import GGUFTensorInfo

    rng = np.random.default_rng(12)
    stack = g.random_blocks(rng, "Q8_0", 2 * 4, 32).reshape(2, 4, -1)
    tensors = {"output.weight": np.ones((3, 2), np.float32), "blk.10.ffn_up.weight": np.ones((2, 2), np.float32),
               "blk.2.ffn_up_exps.weight": (stack, "Q8_0"), "blk.2.attn_q.weight": np.ones((2, 2), np.float32),
               "blk.2.attn_q.bias": np.ones(2, np.float32), "token_embd.weight": np.ones((5, 2), np.float32),
               "blk.2.empty.weight": np.zeros(0, np.float32), "w": np.ones(1, np.float32),
               "é.weight": np.ones((2, 2), np.float32)}
    path = g.write(tmp_path / "order.gguf", tensors)
    header = read_gguf(path)
    assert [t.name for t in header.tensors] == list(tensors) == header.tensors.names()
    assert header.tensors[-1] == header.tensors[len(tensors) - 1] == header.tensors[-1:][0]
    assert isinstance(header.tensors[2], GGUFTensorInfo) and header.tensors[2].dims == (32, 4, 2)
    assert header.tensors[6].nbytes == 0 and header.tensors[6].shape == (0,)
    assert list(header.tensors.ends_with(b".weight")) == [n.endswith(".weight") for n in tensors]
    with pytest.raises(IndexError):
        header.tensors[len(tensors)]
    inv = hts.open(path)
    assert isinstance(inv.tensors, GGUFTensorList)
    assert [t.longname for t in inv] == [
        "model.embed_tokens", "é", "blk.2.empty", "model.layers.2.self_attn.q_proj",
        "model.layers.2.mlp.experts.0.up_proj", "model.layers.2.mlp.experts.1.up_proj", "model.layers.10.mlp.up_proj",
        "lm_head"]
    assert [t.layer_id for t in inv] == list(range(1, 9))
    assert list(inv.tensors) == inv.tensors[:] == [inv.tensors[i] for i in range(-8, 0)]
    assert inv.tensors[5].key == "blk.2.ffn_up_exps.weight[1]" and inv.tensors[5].shape == (4, 32)
    np.testing.assert_array_equal(inv.tensors[3].load(), tensors["blk.2.attn_q.weight"])
    assert "1-D" in inv.tensors[2].skip_reason and inv.tensors[2].shape == (0,)


def test_duplicate_tensor_names_are_refused_naming_the_first_repeated(tmp_path):
    """Names are checked unique after the loop (by hash, then bytes): the error names the first tensor, in file
    order, whose name an earlier one has (row 2 repeats row 1, before row 3 repeats row 0)."""
    path = g.write(tmp_path / "dup.gguf", {f"x{i}.weight": np.ones((2, 2), np.float32) for i in range(4)})
    raw = path.read_bytes().replace(b"x2.weight", b"x1.weight").replace(b"x3.weight", b"x0.weight")
    path.write_bytes(raw)
    with pytest.raises(hts.ModelFileError, match="duplicate tensor name") as err:
        read_gguf(path)
    assert "x1.weight" in str(err.value) and "x0.weight" not in str(err.value)


def test_unmapped_architecture_keeps_gguf_names(tmp_path):
    w = np.random.default_rng(1).standard_normal((32, 16)).astype(np.float32)
    path = g.write(tmp_path / "gpt2.gguf", {"blk.0.attn_qkv.weight": w}, arch="gpt2")
    (t,) = hts.open(path)
    assert t.longname == "blk.0.attn_qkv" and t.key == "blk.0.attn_qkv.weight"


def test_big_endian_file(tmp_path):
    rng = np.random.default_rng(10)
    w32, w16 = rng.standard_normal((16, 8)).astype(np.float32), rng.standard_normal((8, 4)).astype(np.float16)
    blocks = g.random_blocks(rng, "Q8_0", 4, 32)
    path = g.write(tmp_path / "be.gguf", {"blk.0.ffn_up.weight": w32, "blk.0.ffn_down.weight": w16,
                                          "blk.0.ffn_gate.weight": (blocks, "Q8_0")}, big_endian=True)
    header = read_gguf(path)
    assert header.byte_order == ">" and header.architecture == "llama"
    t = {x.key: x for x in hts.open(path)}
    np.testing.assert_array_equal(t["blk.0.ffn_up.weight"].load(), w32)
    np.testing.assert_array_equal(t["blk.0.ffn_down.weight"].load(), w16)
    assert "big-endian" in t["blk.0.ffn_gate.weight"].skip_reason


def _v1_file(path, w: np.ndarray) -> None:
    """A version-1 GGUF (u32 counts, lengths and dims), written by hand: the gguf package writes v3 only."""
    def s(text):
        return struct.pack("<I", len(text)) + text.encode()
    name = "blk.0.ffn_up.weight"
    out = b"GGUF" + struct.pack("<III", 1, 1, 1)
    out += s("general.architecture") + struct.pack("<I", 8) + s("llama")
    out += s(name) + struct.pack("<I", 2) + struct.pack("<II", w.shape[1], w.shape[0])
    out += struct.pack("<IQ", 0, 0)
    out += b"\0" * (-len(out) % 32) + w.astype("<f4").tobytes()
    path.write_bytes(out)


def test_versions_1_and_2(tmp_path):
    w = np.random.default_rng(11).standard_normal((8, 32)).astype(np.float32)
    _v1_file(tmp_path / "v1.gguf", w)
    (t,) = hts.open(tmp_path / "v1.gguf")
    assert read_gguf(tmp_path / "v1.gguf").version == 1 and t.longname == "model.layers.0.mlp.up_proj"
    np.testing.assert_array_equal(t.load(), w)
    path = g.write(tmp_path / "v2.gguf", {"blk.0.ffn_up.weight": w})
    raw = bytearray(path.read_bytes())
    raw[4:8] = struct.pack("<I", 2)  # v2 and v3 differ only in v3's big-endian support
    path.write_bytes(bytes(raw))
    assert read_gguf(path).version == 2
    np.testing.assert_array_equal(hts.open(path)[0].load(), w)


def test_metadata_is_read_and_large_arrays_summarised(tmp_path):
    import gguf as pkg

    w = pkg.GGUFWriter(str(tmp_path / "m.gguf"), arch="llama")
    w.add_name("tiny")
    w.add_token_list([f"tok{i}" for i in range(3000)])
    w.add_array("test.small", [1, 2, 3])
    w.add_tensor("token_embd.weight", np.ones((8, 4), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    meta = read_gguf(tmp_path / "m.gguf").metadata
    assert meta["general.name"] == "tiny" and meta["test.small"] == [1, 2, 3]
    assert meta["tokenizer.ggml.tokens"] == "<array of 3000 string>"


def test_metadata_past_the_kept_budget_is_counted_not_kept(tmp_path, monkeypatch, caplog):
    """A header of very many small entries keeps its first ``MAX_KEPT_METADATA`` values (an array counts 1 + its
    items), counts the rest with a warning, keeps the keys the reader needs wherever they are, and still refuses
    a duplicate key among the entries it does not keep."""
    import gguf as pkg

    from hts.adapters import gguf_format

    monkeypatch.setattr(gguf_format, "MAX_KEPT_METADATA", 10)

    def write(path, keys):
        w = pkg.GGUFWriter(str(path), arch="llama")  # general.architecture first: 1 value
        w.add_array("test.list", [1, 2, 3])  # 4 values
        for key in keys:
            w.add_uint8(key, 7)
        w.add_custom_alignment(64)
        w.add_tensor("token_embd.weight", np.ones((8, 4), np.float32))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        return path

    keys = [f"k{i}" for i in range(8)]
    with caplog.at_level("WARNING", logger="hts"):
        header = read_gguf(write(tmp_path / "m.gguf", keys))
    assert list(header.metadata) == ["general.architecture", "test.list", *keys[:5], "general.alignment"]
    assert header.metadata_dropped == 3 and header.alignment == 64 and "3 metadata entries" in caplog.text
    np.testing.assert_array_equal(hts.open(tmp_path / "m.gguf")[0].load(), np.ones((8, 4), np.float32))
    path = write(tmp_path / "dup.gguf", keys)
    path.write_bytes(path.read_bytes().replace(b"k6", b"k7"))  # k7 twice, both past the budget
    with pytest.raises(hts.ModelFileError, match="duplicate metadata key 'k7'"):
        read_gguf(path)


def test_every_truncation_is_a_clear_error(tmp_path):
    rng = np.random.default_rng(12)
    path = g.write(tmp_path / "full.gguf", {"token_embd.weight": rng.standard_normal((4, 8)).astype(np.float32),
                                            "blk.0.ffn_up.weight": (g.random_blocks(rng, "Q4_0", 2, 32), "Q4_0")})
    blob = path.read_bytes()
    end = max(t.begin + t.nbytes for t in read_gguf(path).tensors)  # the writer pads after the last tensor
    cut = tmp_path / "cut.gguf"
    for n in range(end):
        cut.write_bytes(blob[:n])
        with pytest.raises(hts.ModelFileError, match="cut.gguf"):
            for t in hts.open(cut):
                t.load()


def test_a_zero_size_tensor_with_a_huge_dimension_is_refused(tmp_path):
    # found by bench/fuzz_gguf.py: dims (0, 1, 1.1e19, 1) hold no data, but no numpy array has that shape
    w = np.zeros((1, 0), np.float32)
    path = g.write(tmp_path / "z.gguf", {"blk.0.ffn_up.weight": w})
    raw = bytearray(path.read_bytes())
    name = b"blk.0.ffn_up.weight"
    at = raw.index(struct.pack("<Q", len(name)) + name) + 8 + len(name) + 4
    struct.pack_into("<Q", raw, at + 8, 11399495290930336803)  # the second dim
    path.write_bytes(bytes(raw))
    with pytest.raises(hts.ModelFileError, match="are too large"):
        hts.open(path)


def test_file_changed_after_open_is_refused(tmp_path):
    w = np.ones((8, 32), np.float32)
    path = g.write(tmp_path / "c.gguf", {"blk.0.ffn_up.weight": w})
    (t,) = hts.open(path)
    with open(path, "ab") as f:
        f.write(b"\0" * 64)
    with pytest.raises(hts.ModelFileError, match="changed since"):
        t.load()


def test_a_folder_with_one_gguf_file_and_the_cli(tmp_path, llama, capsys):
    _, path, st = llama
    st.unlink()
    assert hts.open(tmp_path).weights_file == str(path)
    from hts.cli import main

    logger = logging.getLogger("hts")
    handlers, level = list(logger.handlers), logger.level
    try:
        assert main(["describe", str(path)]) == 0
    finally:  # main configures the hts logger for the command line: restore the library's state
        logger.handlers[:] = handlers
        logger.setLevel(level)
    out = capsys.readouterr().out
    assert "blk.0.attn_q.weight" in out and "F32" in out


def test_misnamed_gguf_is_read_by_content_with_a_warning(tmp_path, llama, caplog):
    _, path, _ = llama
    renamed = tmp_path / "model.bin"
    renamed.write_bytes(path.read_bytes())
    with caplog.at_level(logging.WARNING, logger="hts"):
        inv = hts.open(renamed)
    assert len(inv) == len(hts.open(path))
    assert "GGUF" in caplog.text and "PyTorch" in caplog.text
