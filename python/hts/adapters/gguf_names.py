"""llama.cpp tensor names -> Hugging Face transformers names, for the LLaMA family of architectures.

llama.cpp's converter renames every tensor (``model.layers.3.self_attn.q_proj.weight`` becomes
``blk.3.attn_q.weight``). hts shows the Hugging Face name (so a GGUF file and the safetensors checkpoint it came
from give rows with the same names) and keeps the GGUF name as the row's ``key``. Only architectures whose
transformers layout is the LLaMA one are mapped; for any other architecture, and any name not in the table,
the GGUF name is used unchanged.

The converter also permutes the rows of ``q_proj`` and ``k_proj`` (it regroups each head's rotary halves).
A row permutation P leaves singular values unchanged (PW has the same WᵀW as W, since PᵀP = I), so every
spectral metric of a GGUF ``attn_q``/``attn_k`` equals that of the original matrix: no un-permuting is needed.
"""

from __future__ import annotations

import re

__all__ = ["LLAMA_LIKE", "hf_name"]

#: ``general.architecture`` values whose tensors follow transformers' LlamaForCausalLM naming.
LLAMA_LIKE = frozenset({"llama", "mistral", "mistral3", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "granite",
                        "olmo", "olmo2", "internlm2", "deci", "smollm3", "exaone", "minicpm", "stablelm",
                        "llama4", "qwen2moe", "qwen3moe", "mixtral"})

_TOP = {
    "token_embd": "model.embed_tokens",
    "output_norm": "model.norm",
    "output": "lm_head",
}

_BLOCK = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "attn_q_norm": "self_attn.q_norm",
    "attn_k_norm": "self_attn.k_norm",
    "attn_qkv": "self_attn.qkv_proj",
    "ffn_norm": "post_attention_layernorm",
    "post_attention_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "ffn_gate_inp": "mlp.gate",
    "ffn_gate_exps": "mlp.experts.gate_proj",
    "ffn_up_exps": "mlp.experts.up_proj",
    "ffn_down_exps": "mlp.experts.down_proj",
    "ffn_gate_shexp": "mlp.shared_expert.gate_proj",
    "ffn_up_shexp": "mlp.shared_expert.up_proj",
    "ffn_down_shexp": "mlp.shared_expert.down_proj",
}

_BLK = re.compile(r"blk\.(\d+)\.([a-z_]+)\.(weight|bias)")


def hf_name(gguf_name: str, architecture: str) -> str:
    """The transformers name of a GGUF tensor (``blk.3.attn_q.weight`` -> ``model.layers.3.self_attn.q_proj
    .weight``); the GGUF name itself when the architecture or the name is not in the table."""
    if architecture not in LLAMA_LIKE:
        return gguf_name
    stem, dot, suffix = gguf_name.rpartition(".")
    if dot and suffix in ("weight", "bias") and stem in _TOP:
        return f"{_TOP[stem]}.{suffix}"
    m = _BLK.fullmatch(gguf_name)
    if m and m.group(2) in _BLOCK:
        return f"model.layers.{m.group(1)}.{_BLOCK[m.group(2)]}.{m.group(3)}"
    return gguf_name
