"""PyTorch checkpoints (``.pt``, ``.pth``, ``.bin``) read safely: ``torch.load(weights_only=True)`` only.

``weights_only=True`` unpickles tensors, containers and plain values and refuses anything else, so a
checkpoint cannot run code while it is read (a pickle that tries raises ``ModelFileError``, never executes).
Zip-format checkpoints are memory-mapped (``mmap=True``): tensors are read when analysed, one at a time;
legacy (pre-1.6, non-zip) files are loaded whole. Nesting under ``state_dict``/``model`` and ``module.``
prefixes are unwrapped (see ``mapping``). Tensors that share storage (tied weights saved together) are listed
once: the later keys are skipped with the name of the first.
"""

from __future__ import annotations

import os
import pickle
import zipfile

from ..errors import ModelFileError
from .base import WeightTensor
from .mapping import _unwrap, from_mapping

__all__ = ["from_torch_checkpoint", "load_checkpoint"]


def load_checkpoint(path: str):
    """``torch.load`` with ``weights_only=True`` (memory-mapped when the format allows), errors named."""
    try:
        import torch
    except ImportError as err:
        raise ModelFileError(path, "reading a PyTorch checkpoint needs torch: pip install torch==2.13.0") from err
    try:
        mmap = zipfile.is_zipfile(path)
    except OSError as err:
        raise ModelFileError(path, f"cannot read: {err.strerror or err}") from err
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        # torch's message advises weights_only=False: never repeat that; keep only what it refused.
        detail = str(err).split("WeightsUnpickler error:", 1)[-1].strip().split("\n\n")[0].strip()[:200]
        if "weights_only" in detail or not detail:
            detail = "unsupported pickle content"
        raise ModelFileError(path, "refused: not a plain PyTorch checkpoint (its pickle holds objects or opcodes "
                                   "other than tensors and plain data, or is damaged), and hts never runs code "
                                   f"from a file ({detail})") from None
    except (RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile, IndexError, KeyError, TypeError,
            AttributeError, UnicodeDecodeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelFileError(path, f"not a readable PyTorch checkpoint: {first}") from None


def from_torch_checkpoint(path: str | os.PathLike) -> list[WeightTensor]:
    path = os.fspath(path)
    obj = load_checkpoint(path)
    try:
        pairs = _unwrap(obj) if isinstance(obj, dict) else []
    except (AttributeError, TypeError):
        pairs = []
    if not pairs:
        raise ModelFileError(path, f"holds no tensors (a {type(obj).__name__}; expected a state_dict, possibly "
                                   "nested under 'state_dict' or 'model')")
    tensors = from_mapping(pairs, source="torch-checkpoint")
    return mark_shared_storage(tensors, dict(pairs))


def mark_shared_storage(tensors: list[WeightTensor], values: dict) -> list[WeightTensor]:
    """Skip tensors whose storage repeats an earlier one's (tied weights): counted once."""
    from dataclasses import replace

    seen: dict = {}
    out = []
    for t in tensors:
        v = values.get(t.key)
        ident = None
        if v is not None and hasattr(v, "untyped_storage"):
            try:
                ident = (v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape), tuple(v.stride()))
            except RuntimeError:
                ident = None
        if ident is not None and ident[0] != 0 and ident in seen and not t.skip_reason:
            t = replace(t, skip_reason=f"tied to {seen[ident]} (same storage; counted once)")
        elif ident is not None:
            seen.setdefault(ident, t.key)
        out.append(t)
    return out


def from_torch_index(index_path: str | os.PathLike) -> list[WeightTensor]:
    """Sharded ``.bin`` checkpoints listed by a ``pytorch_model.bin.index.json`` (each shard memory-mapped)."""
    from .safetensors_file import natural_key
    from .safetensors_model import read_index

    index_path = os.fspath(index_path)
    weight_map = read_index(index_path)
    values: dict = {}
    for shard in dict.fromkeys(weight_map.values()):
        if not os.path.isfile(shard):
            raise ModelFileError(index_path, f"shard {os.path.basename(shard)!r} listed in the index is missing")
        obj = load_checkpoint(shard)
        pairs = dict(_unwrap(obj)) if isinstance(obj, dict) else {}
        for name, where in weight_map.items():
            if where == shard:
                if name not in pairs:
                    raise ModelFileError(shard, "a tensor the index assigns to this shard is not in it", tensor=name)
                values[name] = pairs[name]
    ordered = [(n, values[n]) for n in sorted(values, key=natural_key)]
    return mark_shared_storage(from_mapping(ordered, source="torch-sharded"), values)
