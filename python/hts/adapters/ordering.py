"""Architecture order for tensors read from files that do not keep module order (safetensors).

A safetensors header lists tensors by name (its writers sort them), so a Hugging Face LLM read in name order
starts with ``lm_head`` and reads each block as mlp.down, gate, up, then attention k, o, q, v: "alpha by
depth" would not be depth. This module restores the order of a transformer's forward pass from the names
alone:

1. **Stage** — tensors outside the repeated blocks come first (embeddings, stems, patch embeddings and
   their norms), except heads and final norms (``lm_head``, ``norm``, ``ln_f``, pooler, classifier, ``fc``),
   which come after the blocks.
2. **Blocks** — a block is a name with a purely numeric path segment (``model.layers.3.…``, ``h.3.…``,
   ``encoder.layer.3.…``). Containers are ordered encoder before decoder (then by name); blocks by index.
3. **Inside a block** — the pre-attention norm, attention (query, key, value or the fused projection, then the
   output projection), the post-attention norm, the MLP (gate, up, then down), then anything else, each tie
   broken by natural name order (``layers.2`` before ``layers.10``), then by the name itself, so the order
   never depends on the order the names came in.

Names that match none of these rules keep their natural name order within their stage, so a model of
unknown layout is never scrambled, only grouped. A model with no numeric segment at all (not block
structured) keeps plain natural name order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np

from .sorting import digits_value, lean_argsort, natural_key

__all__ = ["architecture_argsort", "architecture_key", "architecture_order"]

#: Outside the blocks, names with one of these segments come after the blocks (heads and final norms);
#: every other name outside the blocks (embeddings, stems, their norms) comes before them.
_AFTER_BLOCKS = re.compile(
    r"(^|\.)(lm_head|embed_out|head|heads|conv_head|classifier|fc|pooler|score|output|ln_f|norm_f|norm_out|"
    r"final_layernorm|final_layer_norm|final_norm|norm|bn2|head_norm|fc_norm|pre_logits|logits|qa_outputs)(\.|$)"
)
#: After the blocks, final norms come before pooler and heads.
_FINAL_NORM = re.compile(r"(^|\.)(ln_f|norm_f|norm_out|final_layernorm|final_layer_norm|final_norm|norm|bn2)(\.|$)")
_NUMERIC = re.compile(r"^\d+$")

# Inside a block: (pattern on the path after the block index, rank). First match wins.
_ATTENTION = r"(self_attn|attn|attention|self_attention|mixer)"
_MLP = r"(mlp|ffn|feed_forward|feedforward|intermediate|block_sparse_moe|moe|experts)"
_BLOCK_ROLES: tuple[tuple[re.Pattern, int], ...] = tuple(
    (re.compile(p), r)
    for p, r in (
        (r"(^|\.)(input_layernorm|ln_1|attention_norm|norm1|layer_norm1|ln_attn|pre_attention_norm)(\.|$)", 0),
        (rf"(^|\.){_ATTENTION}\.(.*[._])?(q_proj|query|wq|q_lin|q)(\.|$)", 1),
        (rf"(^|\.){_ATTENTION}\.(.*[._])?(k_proj|key|wk|k_lin|k)(\.|$)", 2),
        (rf"(^|\.){_ATTENTION}\.(.*[._])?(v_proj|value|wv|v_lin|v)(\.|$)", 3),
        (rf"(^|\.){_ATTENTION}\..*(c_attn|qkv_proj|qkv|wqkv|query_key_value|in_proj)", 1),
        (rf"(^|\.){_ATTENTION}\..*(o_proj|out_proj|wo|out_lin|c_proj|dense|output)", 4),
        (rf"(^|\.){_ATTENTION}(\.|$)", 4),
        (r"(^|\.)(post_attention_layernorm|ln_2|ffn_norm|norm2|layer_norm2|pre_feedforward_layernorm)(\.|$)", 5),
        (rf"(^|\.){_MLP}\.(.*\.)?(gate_proj|w1|gate|c_fc|fc1|dense_h_to_4h|wi_0|wi|dense)(\.|$)", 6),
        (rf"(^|\.){_MLP}\.(.*\.)?(up_proj|w3|wi_1)(\.|$)", 7),
        (rf"(^|\.){_MLP}\.(.*\.)?(down_proj|w2|c_proj|fc2|dense_4h_to_h|wo)(\.|$)", 8),
        (rf"(^|\.){_MLP}(\.|$)", 8),
        (r"(^|\.)(fc1|c_fc)(\.|$)", 6),  # phi/opt-style MLP without an "mlp" container
        (r"(^|\.)(fc2)(\.|$)", 8),
        (r"(^|\.)output(\.|$)", 9),  # BERT: layer.N.output.dense is the MLP's down projection
    )
)
_OTHER_IN_BLOCK = 10
_CONTAINER_RANK = (("encoder", 0), ("vision", 0), ("decoder", 1), ("text", 1))


def _block_role(rest: str) -> int:
    for pattern, rank in _BLOCK_ROLES:
        if pattern.search(rest):
            return rank
    return _OTHER_IN_BLOCK


def _container_rank(container: str) -> int:
    for word, rank in _CONTAINER_RANK:
        if word in container:
            return rank
    return 0


def architecture_key(name: str) -> tuple:
    """Sort key of one tensor name in forward-pass order (see the module docstring)."""
    parts = name.split(".")
    for i, part in enumerate(parts):
        if _NUMERIC.match(part):
            container = ".".join(parts[:i])
            rest = ".".join(parts[i + 1:])
            return (1, _container_rank(container), natural_key(container), digits_value(part), _block_role(rest),
                    natural_key(rest), name)
    if _AFTER_BLOCKS.search(name):
        return (2, 0 if _FINAL_NORM.search(name) else 1, [], 0, 0, natural_key(name), name)
    return (0, 0, [], 0, 0, natural_key(name), name)


def architecture_order(names: Iterable[str]) -> list[str]:
    """The names in forward-pass order when they are block structured, else in natural name order."""
    names = list(names)
    return [names[i] for i in architecture_argsort(names)]


def architecture_argsort(names: Sequence[str]) -> np.ndarray:
    """The positions of ``names`` in ``architecture_order`` (int32): what a reader of very many tensors sorts."""
    if not any(_NUMERIC.match(p) for n in names for p in n.split(".")):
        return lean_argsort(names, lambda n: (natural_key(n), n))  # the name breaks ties such as "0" vs "00"
    return lean_argsort(names, architecture_key)

