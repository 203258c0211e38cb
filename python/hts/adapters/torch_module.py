"""Adapter for a live ``torch.nn.Module``: one record per module weight, ids from ``named_modules()``.

Typing follows WeightWatcher 0.7.7 (a substring of the lower-cased ``str(type(module))``, in this order):
``linear`` -> dense (``NonDynamicallyQuantizableLinear`` included), ``conv1d`` -> conv1d (torch ``Conv1d``
and HF GPT-2 ``Conv1D``, whose weight is stored (in, out)), ``conv2d`` -> conv2d, ``embedding`` -> embedding,
``norm`` -> norm (listed, skipped); anything else with a weight is listed as skipped. ``layer_id`` is the
module's index in ``model.named_modules()`` (root = 0), ``name`` the last component of its path.
Weights that are not a module's ``weight`` (``nn.MultiheadAttention.in_proj_weight``, free parameters of
two or more dimensions) are listed as skipped, with the reason, so nothing disappears silently.
"""

from __future__ import annotations

from typing import Any

from .base import WeightTensor
from .tensors import dtype_name, to_numpy

__all__ = ["from_module", "module_layer_type"]


def module_layer_type(module: Any) -> str:
    typestr = str(type(module)).lower()
    for needle, layer_type in (("linear", "dense"), ("conv1d", "conv1d"), ("conv2d", "conv2d"),
                               ("embedding", "embedding"), ("norm", "norm")):
        if needle in typestr:
            return layer_type
    return "unknown"


def _orientation(module: Any, layer_type: str, ndim: int) -> str:
    if layer_type == "conv2d" and ndim == 4:
        return "out_in_kh_kw"
    if layer_type == "conv1d" and ndim == 3:
        return "out_in_k"
    if layer_type == "conv1d" and ndim == 2:  # HF transformers.pytorch_utils.Conv1D keeps (in, out)
        return "in_out"
    return "out_in" if ndim == 2 else "matrix"


def _skip_reason(module: Any, layer_type: str, weight: Any) -> str:
    kind = type(weight).__name__
    if "Uninitialized" in kind:
        return "weight is not initialised yet (lazy module)"
    if layer_type == "norm":
        return "normalization layer"
    if layer_type == "unknown":
        return f"unsupported layer type {type(module).__name__}"
    expected = {"dense": (2,), "embedding": (2,), "conv2d": (4,), "conv1d": (2, 3)}[layer_type]
    if weight.dim() not in expected:
        return f"{type(module).__name__} weight of shape {tuple(weight.shape)} is not a weight matrix"
    if weight.device.type == "meta":
        return "weight has no data (meta device)"
    return ""


def from_module(model: Any) -> list[WeightTensor]:
    from .shared import mark_shared_storage

    out: list[WeightTensor] = []
    params: dict = {}
    for layer_id, (longname, module) in enumerate(model.named_modules()):
        name = longname.split(".")[-1] if longname else type(module).__name__
        layer_type = module_layer_type(module)
        for pname, param in module.named_parameters(recurse=False):
            if pname == "bias":
                continue
            if pname == "weight":
                reason = _skip_reason(module, layer_type, param)
                ltype = layer_type
            else:
                if param.dim() < 2:
                    continue
                reason = (
                    "packed q/k/v projection of nn.MultiheadAttention (WeightWatcher skips it too)"
                    if pname == "in_proj_weight"
                    else f"parameter '{pname}' is not the weight of a supported layer"
                )
                ltype = "unknown"
            shape = tuple(int(s) for s in param.shape) if "Uninitialized" not in type(param).__name__ else ()
            key = f"{longname}.{pname}" if longname else pname
            params[key] = param
            out.append(
                WeightTensor(
                    layer_id=layer_id,
                    name=name,
                    longname=longname,
                    key=key,
                    layer_type=ltype,
                    shape=shape,
                    dtype=dtype_name(param),
                    orientation=_orientation(module, ltype, len(shape)),
                    load=(lambda p=param: to_numpy(p)),
                    skip_reason=reason,
                    source="torch.nn.Module",
                    groups=int(getattr(module, "groups", 1) or 1) if ltype == "conv2d" else 0,
                )
            )
    return mark_shared_storage(out, params)  # a tied lm_head (one Parameter, two modules) counted once
