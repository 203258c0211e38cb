"""Limits every reader applies to a file before it allocates for its contents (docs/formats.md, "Limits").

Peak memory while a file is listed and its tensors are loaded one at a time is at most
``4 × file size + largest tensor + PER_TENSOR_BYTES × tensors listed`` (tests/test_reader_memory.py measures it
for every format on large hostile files). The last term is the bookkeeping of one listed tensor (its name,
shape, loader; for PyTorch checkpoints torch's own tensor and storage objects, which ``torch.load`` creates for
the whole state dict): a flood of tiny tensors costs that per tensor whatever the file's size, so the count is
capped at ``MAX_TENSORS`` per file, checked before the tensors are built.
"""

from __future__ import annotations

__all__ = ["MAX_TENSORS", "PER_TENSOR_BYTES"]

#: At most this many tensors per file (a 70B model has fewer than 1,000 per shard).
MAX_TENSORS = 200_000

#: The bookkeeping one listed tensor may cost (measured: 1.2-2.7 KiB; the most is a legacy PyTorch pickle).
PER_TENSOR_BYTES = 3 * 2**10
