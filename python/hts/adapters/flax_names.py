"""Names, layer types and orientations of Flax / JAX parameter trees, shared by the msgpack reader
(``flax_file``) and the Orbax checkpoint reader (``orbax_checkpoint``).

Names: the tree path joined with dots (``params.Dense_0.kernel``); nnx states' ``value`` / ``raw_value``
wrappers are dropped. A layer is the path without its last component; ``key`` is the full path.

| leaf | hts type, orientation |
|---|---|
| ``kernel`` 2-D (nn.Dense, nnx.Linear) | dense, ``in_out`` (stored (in, out)) |
| ``kernel`` 4-D (nn.Conv 2-D) | conv2d, ``kh_kw_in_out`` (HWIO) |
| ``kernel`` 3-D of a module named ``*Conv*`` (nn.Conv 1-D: (k, in, out)) | conv1d, loaded as (out, in, k) |
| ``embedding`` 2-D (nn.Embed) | embedding, ``out_in`` (rows × dim) |

Other arrays of two or more dimensions (DenseGeneral's 3-D kernels (in, heads, head_dim), which a 1-D conv
kernel's shape cannot be told from, hence the module-name rule above; ...) and everything under an optimizer
state (``opt_state``, Orbax's ``opt_state``/``optimizer`` items) are listed with a skip reason; 1-D arrays
(biases, norm scales) are not layers. dtypes: float16/32/64 as stored, bfloat16 widened to float32 exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["Layer", "classify", "strip_wrappers"]

WRAPPERS = ("value", "raw_value")
OPTIMIZER = ("opt_state", "optimizer", "optimizer_state")


def strip_wrappers(key: str) -> str:
    """``key`` without trailing nnx ``value`` / ``raw_value`` components."""
    parts = key.split(".")
    while len(parts) > 1 and parts[-1] in WRAPPERS:
        parts.pop()
    return ".".join(parts)


@dataclass(frozen=True)
class Layer:
    """How one stored array is presented: its layer, type, orientation, skip reason and the shape it loads as
    (``transform`` maps the stored array to that shape; None when they are the same)."""

    name: str
    longname: str
    layer_type: str
    orientation: str
    shape: tuple
    skip_reason: str
    transform: Callable[[np.ndarray], np.ndarray] | None


def classify(key: str, shape: tuple, dtype: str, float_dtype: bool) -> Layer:
    """The ``Layer`` of the array ``key`` (already stripped of wrappers) of ``shape`` and ``dtype`` (a name;
    ``float_dtype``: whether it holds floats hts reads)."""
    leaf = key.rsplit(".", 1)[-1]
    layer = key.rsplit(".", 1)[0] if "." in key else key
    skip = "" if float_dtype else f"{dtype} array: not a float weight matrix"
    if any(p in OPTIMIZER for p in key.split(".")):
        skip = skip or "optimizer state, not a weight"
    transform = None
    if leaf == "kernel" and len(shape) == 2:
        ltype, orient = "dense", "in_out"
    elif leaf == "kernel" and len(shape) == 4:
        ltype, orient = "conv2d", "kh_kw_in_out"
    elif leaf == "kernel" and len(shape) == 3 and not skip and "conv" in layer.rsplit(".", 1)[-1].lower():
        ltype, orient = "conv1d", "out_in_k"
        shape = (shape[2], shape[1], shape[0])
        transform = lambda w: np.ascontiguousarray(w.transpose(2, 1, 0))
    elif leaf == "embedding" and len(shape) == 2:
        ltype, orient = "embedding", "out_in"
    else:
        ltype, orient = "unknown", "matrix"
        # the reason names the leaf only when it is a known one: one text per kind of array, not per array (a
        # skipped row keeps its reason; a flood of arbitrary names would hold one string each)
        what = f"'{leaf}' array" if leaf in ("kernel", "embedding") else "array named neither 'kernel' nor 'embedding'"
        skip = skip or f"{len(shape)}-D {what}: not a Dense/Conv kernel or an embedding"
    return Layer(layer.rsplit(".", 1)[-1], layer, ltype, orient, tuple(shape), skip, transform)
