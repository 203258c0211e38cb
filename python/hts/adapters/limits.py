"""Limits every reader applies to a file before it allocates for its contents (docs/formats.md, "Limits").

Peak memory while a file is listed and its tensors are loaded one at a time is at most
``4 × file size + largest tensor`` (tests/test_reader_memory.py measures it for every format on large hostile
files): safetensors, Flax msgpack, ``.npz`` and GGUF hold their listing as columns and make the ``WeightTensor``
records on use (``lazy.LazyTensors``). PyTorch checkpoints cannot: ``torch.load`` builds its own tensor and
storage objects for the whole state dict before hts sees any of it. So a PyTorch checkpoint's tensors are
counted before torch runs (zip storages, or the persistent ids of a legacy pickle) and the file is refused when
that many tensors would cost more than the bound allows for a file of its size (:func:`torch_tensor_budget`).
Every file's count is also capped at ``MAX_TENSORS``, checked before the tensors are built.
"""

from __future__ import annotations

__all__ = ["MAX_TENSORS", "MAX_TENSOR_BYTES", "TORCH_BYTES_PER_TENSOR", "TORCH_FIXED_BYTES", "torch_tensor_budget"]

#: At most this many tensors per file (a 70B model has fewer than 1,000 per shard).
MAX_TENSORS = 200_000

#: At most this many bytes (in the stored dtype) per tensor whose size the file's bytes do not back: an Orbax
#: (zarr) array is decoded from compressed chunks, and missing chunks hold its fill value, so a few bytes of
#: metadata can declare any size; the array is allocated at its declared size (a constant tensor compresses
#: ~30,000:1 and is read all the same). The largest single tensors of today's open models are 1-5 GB.
MAX_TENSOR_BYTES = 16 * 2**30

#: What ``torch.load`` and hts's record cost per tensor of a PyTorch checkpoint, with margin (measured on floods
#: of tiny tensors: ~1.0-1.4 KiB for a zip checkpoint, ~1.9-2.6 KiB for a legacy pickle).
TORCH_BYTES_PER_TENSOR = {"zip": 2048, "legacy": 3072}
#: The part of the memory bound's fixed allowance torch's per-tensor objects may use whatever the file's size:
#: a checkpoint of up to ~4,000 tensors (zip; ~2,700 for a legacy pickle) is never refused for its count.
TORCH_FIXED_BYTES = 8 * 2**20


def torch_tensor_budget(file_size: int, kind: str) -> int:
    """The most tensors a PyTorch checkpoint of ``file_size`` bytes (``kind``: "zip" or "legacy") may hold and
    stay within the memory bound: ``(4 × file_size + TORCH_FIXED_BYTES) // TORCH_BYTES_PER_TENSOR[kind]``.
    Real checkpoints hold kilobytes to megabytes per tensor and are far below it; only a flood of tiny tensors
    (a few hundred bytes of file each, thousands of them) reaches it."""
    return (4 * max(file_size, 0) + TORCH_FIXED_BYTES) // TORCH_BYTES_PER_TENSOR[kind]
