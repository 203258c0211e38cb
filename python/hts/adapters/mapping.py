"""Adapter for mappings name -> array: PyTorch state_dicts, dicts of numpy arrays, lists of pairs.

Rules (those of WeightWatcher's state_dict reader, so that ids and layer sets agree):
- If any key ends with ``.weight``, only those keys are layers; otherwise every array is one.
- ``layer_id`` counts those keys from 1, in mapping order, norms and 1-D weights included.
- Type from the number of dimensions: 2-D -> ``dense``, 4-D -> ``conv2d`` (torch layout (out, in, kh, kw)
  unless ``out + in < kh + kw``, then Keras layout (kh, kw, in, out)), anything else -> skipped.
- A mapping with a ``"state_dict"`` or ``"model"`` entry that is itself a mapping of tensors is unwrapped;
  a ``module.`` prefix on every key (DataParallel) is removed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

from .base import SLOTS, WeightTensor
from .tensors import dtype_name, is_array_like, to_numpy

__all__ = ["Entry", "from_entries", "from_mapping", "is_mapping_model"]


def is_mapping_model(model: Any) -> bool:
    if isinstance(model, Mapping):
        return True
    if isinstance(model, (list, tuple)) and model:
        return all(isinstance(p, (list, tuple)) and len(p) == 2 and isinstance(p[0], str) for p in model)
    return False


def _unwrap(model: Any) -> list[tuple[str, Any]]:
    items = list(model.items()) if isinstance(model, Mapping) else [tuple(p) for p in model]
    for wrapper in ("state_dict", "model"):
        inner = dict(items).get(wrapper)
        if isinstance(inner, Mapping) and any(is_array_like(v) for v in inner.values()):
            return _unwrap(inner)
    arrays = [(str(k), v) for k, v in items if is_array_like(v)]
    if arrays and all(k.startswith("module.") for k, _ in arrays):
        arrays = [(k[len("module."):], v) for k, v in arrays]
    return arrays


def _conv_orientation(shape: tuple) -> str:
    a, b, c, d = shape
    return "out_in_kh_kw" if a + b >= c + d else "kh_kw_in_out"


def from_mapping(model: Any, *, source: str = "mapping") -> list[WeightTensor]:
    arrays = _unwrap(model)
    if not arrays:
        raise ValueError("the mapping holds no arrays or tensors")
    entries = [Entry(key, tuple(int(s) for s in value.shape), dtype_name(value), (lambda v=value: to_numpy(v)))
               for key, value in arrays]
    from .shared import mark_shared_storage

    return mark_shared_storage(from_entries(entries, source=source), dict(arrays))


@dataclass(frozen=True, **SLOTS)
class Entry:
    """A named tensor of a state_dict-like source, before typing: what a file header or a mapping tells."""

    key: str
    shape: tuple
    dtype: str
    load: Callable[[], Any] = field(repr=False, compare=False)
    skip_reason: str = ""  # set when the source already knows the tensor cannot be analysed (e.g. int dtype)


def from_entries(entries: Sequence[Entry], *, source: str) -> list[WeightTensor]:
    """WeightTensor records from named tensors, by the state_dict rules in this module's docstring."""
    has_weight_keys = any(e.key.endswith(".weight") for e in entries)
    out = []
    layer_id = 0
    for e in entries:
        if has_weight_keys and not e.key.endswith(".weight"):
            continue
        layer_id += 1
        out.append(weight_tensor(e.key, e.shape, e.dtype, e.load, e.skip_reason, layer_id=layer_id, source=source))
    return out


def weight_tensor(key: str, shape: tuple, dtype: str, load: Callable[[], Any], skip_reason: str, *, layer_id: int,
                  source: str) -> WeightTensor:
    """The record of one named tensor at position ``layer_id``, typed by the rules of the module docstring."""
    name = key[: -len(".weight")] if key.endswith(".weight") else key
    if len(shape) == 2:
        layer_type, orientation = "dense", "matrix"
    elif len(shape) == 4:
        layer_type, orientation = "conv2d", _conv_orientation(shape)
    else:
        layer_type, orientation = "unknown", "matrix"
        skip_reason = skip_reason or f"{len(shape)}-D tensor is not a weight matrix (only 2-D and 4-D are analysed)"
    return WeightTensor(layer_id=layer_id, name=name, longname=name, key=key, layer_type=layer_type, shape=shape,
                        dtype=dtype, orientation=orientation, load=load, skip_reason=skip_reason, source=source)
