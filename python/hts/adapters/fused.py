"""Split fused projection matrices into the matrices they stand for (``split_fused=True``).

A fused matrix's spectrum is not its parts' spectra, so a model whose attention stores Q, K and V in one
tensor is not comparable with one that stores three. Recognised (key suffix → layout, from ``config.json``):

| key ends with              | stored shape             | parts                                           |
|----------------------------|--------------------------|-------------------------------------------------|
| ``c_attn.weight`` (GPT-2)  | (d, 3d), (in, out)       | q, k, v: thirds of the columns                  |
| ``query_key_value.weight`` | (3d, d), GPT-NeoX/BLOOM  | q, k, v: rows interleaved per head (h, 3, d/h)  |
| ``qkv_proj.weight`` (Phi-3)| ((h + 2·kv)·hd, d)       | q (h·hd rows), k, v (kv·hd rows each)           |
| ``gate_up_proj.weight``    | (2·I, d)                 | gate, up: halves of the rows                    |

A fused tensor whose layout cannot be told (Falcon's ``query_key_value``, shapes that disagree with the
config, no config where one is needed) stays whole, with a warning. Parts are named ``<longname>.<part>`` and
keep the source key with ``[part]``; layer ids are renumbered 1..n after splitting.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Callable

import numpy as np

from .base import WeightTensor

__all__ = ["split_fused"]

logger = logging.getLogger("hts")

Slicer = Callable[[np.ndarray], np.ndarray]


def _heads(config: dict) -> int | None:
    for key in ("num_attention_heads", "n_head", "num_heads"):
        if isinstance(config.get(key), int) and config[key] > 0:
            return config[key]
    return None


def _plan(t: WeightTensor, config: dict) -> list[tuple[str, Slicer, tuple]] | str:
    """The parts of ``t`` as (suffix, slicer, shape), [] when it is not fused, or a reason it cannot be split."""
    shape = t.shape
    if len(shape) != 2:
        return []
    rows, cols = shape
    key = t.key
    model_type = str(config.get("model_type", ""))
    if key.endswith("c_attn.weight"):
        if cols != 3 * rows:
            return f"c_attn of shape {shape} is not (d, 3d)"
        return [(p, (lambda w, i=i: w[:, i * rows:(i + 1) * rows]), (rows, rows)) for i, p in enumerate("qkv")]
    if key.endswith("query_key_value.weight"):
        if model_type not in ("gpt_neox", "bloom"):
            return f"query_key_value layout of model_type {model_type or '(no config.json)'!r} is not known"
        h = _heads(config)
        if h is None or rows != 3 * cols or cols % h:
            return f"query_key_value of shape {shape} does not match {h} heads"
        hd = cols // h
        return [(p, (lambda w, i=i: w.reshape(h, 3, hd, cols)[:, i].reshape(cols, cols)), (cols, cols))
                for i, p in enumerate("qkv")]
    if key.endswith("qkv_proj.weight"):
        h = _heads(config)
        kv = config.get("num_key_value_heads", h)
        if h is None or not isinstance(kv, int) or cols % h:
            return "qkv_proj needs num_attention_heads (and num_key_value_heads) in config.json"
        hd = config.get("head_dim") if isinstance(config.get("head_dim"), int) else cols // h
        q, k = h * hd, kv * hd
        if rows != q + 2 * k:
            return f"qkv_proj of shape {shape} does not match {h} heads, {kv} key/value heads of size {hd}"
        return [("q", lambda w: w[:q], (q, cols)), ("k", lambda w: w[q:q + k], (k, cols)),
                ("v", lambda w: w[q + k:], (k, cols))]
    if key.endswith("gate_up_proj.weight"):
        if rows % 2:
            return f"gate_up_proj of shape {shape} has an odd number of rows"
        half = rows // 2
        return [("gate", lambda w: w[:half], (half, cols)), ("up", lambda w: w[half:], (half, cols))]
    return []


def split_fused(tensors: list[WeightTensor], config: dict) -> list[WeightTensor]:
    out: list[WeightTensor] = []
    for t in tensors:
        plan = [] if t.skip_reason else _plan(t, config)
        if isinstance(plan, str):
            logger.warning("%s kept fused: %s", t.key, plan)
            out.append(t)
            continue
        if not plan:
            out.append(t)
            continue
        for part, slicer, shape in plan:
            load = (lambda parent=t.load, s=slicer: np.ascontiguousarray(s(parent())))
            out.append(replace(t, name=f"{t.name}.{part}", longname=f"{t.longname}.{part}", key=f"{t.key}[{part}]",
                               shape=shape, load=load))
        logger.info("%s split into %s", t.key, ", ".join(p for p, _, _ in plan))
    return [replace(t, layer_id=i + 1) for i, t in enumerate(out)]
