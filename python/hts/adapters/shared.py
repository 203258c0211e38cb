"""Tied weights: tensors that are views of the same memory are analysed once.

A tied ``lm_head`` is the input embedding under a second name, in a live module (one ``Parameter`` reached
from two modules), in ``model.state_dict()`` and in what ``torch.load`` returns (two keys, one storage). Every
reader marks the second and later occurrences as skipped, "tied to <first key> (same storage; counted once)",
so the same weights give the same summary whichever way they reach hts. Identity is the memory a tensor views:
(address of its storage, offset, shape, strides); two distinct views of one buffer (the parts of a fused
matrix) are different tensors and both analysed.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Iterable

from .base import WeightTensor

__all__ = ["mark_shared_storage", "storage_identity"]


def storage_identity(value: Any) -> tuple | None:
    """(kind, storage address, offset, shape, strides) of a torch tensor or numpy array; None when unknown
    (lazy, meta or foreign objects: never deduplicated)."""
    if hasattr(value, "untyped_storage"):  # torch
        try:
            ptr = value.untyped_storage().data_ptr()
            ident = ("torch", ptr, int(value.storage_offset()), tuple(value.shape), tuple(value.stride()))
        except (RuntimeError, NotImplementedError, TypeError, AttributeError, ValueError):
            return None
        return ident if ptr else None
    interface = getattr(value, "__array_interface__", None)
    if isinstance(interface, dict) and isinstance(interface.get("data"), tuple):
        ptr = interface["data"][0]
        if not ptr:
            return None
        return ("numpy", ptr, 0, tuple(interface.get("shape", ())), tuple(interface.get("strides") or ()),
                interface.get("typestr"))
    return None


def mark_shared_storage(tensors: Iterable[WeightTensor], values: dict) -> list[WeightTensor]:
    """Skip tensors whose memory repeats an earlier tensor's (``values``: key -> tensor/array): counted once."""
    seen: dict = {}
    out = []
    for t in tensors:
        ident = storage_identity(values.get(t.key)) if t.key in values else None
        if ident is not None and ident in seen and not t.skip_reason:
            t = replace(t, skip_reason=f"tied to {seen[ident]} (same storage; counted once)")
        elif ident is not None and not t.skip_reason:
            seen.setdefault(ident, t.key)
        out.append(t)
    return out
