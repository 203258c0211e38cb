"""Adapters turn any model into an inventory of named, lazily loaded weight tensors.

The analysis never cares where a tensor came from: it only sees ``WeightTensor`` records. Each adapter module
handles one kind of source and imports its framework lazily, so ``import hts`` stays light and everything but
the torch adapter works without torch.
"""

from __future__ import annotations

from typing import Any

from .base import LAYER_TYPES, WeightTensor
from .mapping import from_mapping, is_mapping_model

__all__ = ["LAYER_TYPES", "WeightTensor", "inventory"]


def inventory(model: Any) -> list[WeightTensor]:
    """The weight tensors of ``model``, in model order, without loading any data.

    Accepted: a ``torch.nn.Module``; a PyTorch state_dict or any mapping name -> array/tensor (also nested
    under a ``"state_dict"`` or ``"model"`` key); a list of ``(name, array)`` pairs.
    """
    if _is_torch_module(model):
        from .torch_module import from_module

        return from_module(model)
    if is_mapping_model(model):
        return from_mapping(model)
    raise TypeError(
        f"cannot analyse an object of type {type(model).__module__}.{type(model).__qualname__}: expected a "
        "torch.nn.Module, a state_dict / dict of arrays, or a list of (name, array) pairs"
    )


def _is_torch_module(model: Any) -> bool:
    # Without importing torch: a torch Module has torch.nn.modules.module.Module in its MRO.
    return any(c.__module__ == "torch.nn.modules.module" and c.__name__ == "Module" for c in type(model).__mro__)
