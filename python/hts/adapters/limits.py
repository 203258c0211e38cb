"""Limits every reader applies to a file before it allocates for its contents (docs/formats.md, "Limits").

Peak memory while a file is listed and its tensors are loaded one at a time is at most
``4 × file size + largest tensor`` (tests/test_reader_memory.py measures it for every format on large hostile
files): safetensors, Flax msgpack and ``.npz`` hold their listing as columns and make the ``WeightTensor``
records on use (``lazy.LazyTensors``). PyTorch checkpoints add up to ``PER_TENSOR_BYTES`` per tensor listed:
torch's own tensor and storage objects, which ``torch.load`` creates for the whole state dict. A flood of tiny
tensors costs that per tensor whatever the file's size, so the count is capped at ``MAX_TENSORS`` per file,
checked before the tensors are built.
"""

from __future__ import annotations

__all__ = ["MAX_TENSORS", "PER_TENSOR_BYTES"]

#: At most this many tensors per file (a 70B model has fewer than 1,000 per shard).
MAX_TENSORS = 200_000

#: What one listed tensor of a PyTorch checkpoint may cost beyond the bound (measured on floods of 20,000 tiny
#: tensors: ~1.0 KiB for a zip checkpoint, ~1.9 KiB for a legacy pickle).
PER_TENSOR_BYTES = 3 * 2**10
