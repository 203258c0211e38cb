"""GGUF files for the tests, written by the ``gguf`` package (llama.cpp's own Python writer).

K-quant and IQ blocks cannot be produced by that package's quantiser (it has none for them), so those tensors
are random blocks whose half-float scales are set to small finite values: real block layouts, decoded by both
hts and the package.
"""

from __future__ import annotations

import numpy as np

#: offsets of the float16 scale fields in each block type, from the ggml block layouts.
SCALE_OFFSETS = {
    "Q4_0": (0,), "Q4_1": (0, 2), "Q5_0": (0,), "Q5_1": (0, 2), "Q8_0": (0,), "Q2_K": (80, 82), "Q3_K": (108,),
    "Q4_K": (0, 2), "Q5_K": (0, 2), "Q6_K": (208,), "IQ4_NL": (0,), "IQ4_XS": (0,), "IQ2_XXS": (0,),
    "IQ2_XS": (0,), "IQ3_XXS": (0,), "IQ3_S": (0,), "IQ2_S": (0,), "TQ2_0": (64,), "TQ1_0": (52,),
}


def random_blocks(rng: np.random.Generator, type_name: str, rows: int, cols: int) -> np.ndarray:
    """(rows, bytes per row) uint8 blocks of ``type_name`` with finite scales in [0.001, 0.1)."""
    import gguf

    qtype = gguf.GGMLQuantizationType[type_name]
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    assert cols % block == 0
    blocks = rng.integers(0, 256, size=(rows * cols // block, size), dtype=np.uint8)
    for off in SCALE_OFFSETS.get(type_name, ()):
        scale = rng.uniform(0.001, 0.1, size=blocks.shape[0]).astype(np.float16)
        blocks[:, off:off + 2] = scale.view(np.uint8).reshape(-1, 2)
    return blocks.reshape(rows, cols // block * size)


def write(path, tensors: dict, *, arch: str = "llama", big_endian: bool = False, metadata: dict | None = None):
    """Write ``tensors`` (GGUF name -> float array, or (uint8 blocks, type name)) to ``path``."""
    import gguf

    endian = gguf.GGUFEndian.BIG if big_endian else gguf.GGUFEndian.LITTLE
    w = gguf.GGUFWriter(str(path), arch=arch, endianess=endian)
    w.add_block_count(2)
    for key, value in (metadata or {}).items():
        w.add_string(key, value)
    for name, value in tensors.items():
        if isinstance(value, tuple):
            blocks, type_name = value
            w.add_tensor(name, blocks, raw_dtype=gguf.GGMLQuantizationType[type_name])
        elif value.dtype == np.uint16:  # bfloat16 bit patterns
            w.add_tensor(name, value, raw_dtype=gguf.GGMLQuantizationType.BF16)
        else:
            w.add_tensor(name, value)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def reference_values(path, name: str) -> np.ndarray:
    """The tensor as the gguf package reads and dequantises it (numpy shape)."""
    import gguf
    from gguf import quants

    reader = gguf.GGUFReader(str(path))
    t = next(t for t in reader.tensors if t.name == name)
    data = quants.dequantize(t.data, t.tensor_type)
    return np.asarray(data, dtype=np.float32).reshape(tuple(int(d) for d in reversed(t.shape)))


def llama_tensors(rng: np.random.Generator, *, layers: int = 2, d: int = 64, ff: int = 128, vocab: int = 96):
    """HF name -> float32 weights of a tiny LLaMA, heavy-tailed enough to fit."""
    def w(n, m):
        return (rng.standard_t(3, size=(n, m)) / np.sqrt(m)).astype(np.float32)

    out = {"model.embed_tokens.weight": w(vocab, d), "model.norm.weight": np.ones(d, np.float32),
           "lm_head.weight": w(vocab, d)}
    for i in range(layers):
        p = f"model.layers.{i}."
        out.update({p + "input_layernorm.weight": np.ones(d, np.float32),
                    p + "self_attn.q_proj.weight": w(d, d), p + "self_attn.k_proj.weight": w(d, d),
                    p + "self_attn.v_proj.weight": w(d, d), p + "self_attn.o_proj.weight": w(d, d),
                    p + "post_attention_layernorm.weight": np.ones(d, np.float32),
                    p + "mlp.gate_proj.weight": w(ff, d), p + "mlp.up_proj.weight": w(ff, d),
                    p + "mlp.down_proj.weight": w(d, ff)})
    return out


GGUF_NAMES = {
    "model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output",
    "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
}


def to_gguf_name(hf: str) -> str:
    """The llama.cpp name of a transformers LLaMA tensor name (the converter's renaming, written out here)."""
    stem = hf[: -len(".weight")]
    if stem in GGUF_NAMES:
        return GGUF_NAMES[stem] + ".weight"
    _, _, i, rest = stem.split(".", 3)
    return f"blk.{i}.{GGUF_NAMES[rest]}.weight"


def write_empty_flood(path, n: int):
    """``n`` empty (0-element, 1-D F32) tensors named ``<i>.weight``, written by the gguf package: GGUF's cheapest
    listed tensors (~44 bytes of header each, no data, no padding), for the memory-bound tests."""
    import gguf

    w = gguf.GGUFWriter(str(path), arch="llama")
    empty = np.zeros(0, np.float32)
    for i in range(n):
        w.add_tensor(f"{i}.weight", empty)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def write_v1_empty_flood(path, n: int):
    """``n`` empty 1-D F32 tensors named ``<i>.weight`` in a version-1 file (u32 lengths, counts and dims: ~36
    bytes a tensor, GGUF's cheapest listed tensor), written by hand as ``test_gguf._v1_file`` does: the gguf
    package writes version 3 only."""
    import struct

    def s(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("<I", len(raw)) + raw

    out = [b"GGUF" + struct.pack("<III", 1, n, 1), s("general.architecture") + struct.pack("<I", 8) + s("llama")]
    entry = struct.pack("<IIIQ", 1, 0, 0, 0)  # 1 dim of 0 values, F32, offset 0
    out.extend(s(f"{i}.weight") + entry for i in range(n))
    raw = b"".join(out)
    with open(path, "wb") as f:
        f.write(raw + b"\0" * (-len(raw) % 32))
    return path
