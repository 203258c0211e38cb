"""Limits every reader applies to a file before it allocates for its contents (docs/formats.md, "Limits").

Peak memory while a file is listed and its tensors are loaded one at a time is at most
``4 × file size + largest tensor`` (tests/test_reader_memory.py measures it for every format on large hostile
files): safetensors, Flax msgpack, ``.npz``, GGUF, Orbax and Keras hold their listing compactly and make the
``WeightTensor`` records on use (``lazy.LazyTensors``). PyTorch checkpoints cannot: ``torch.load`` builds its own tensor and
storage objects for the whole state dict before hts sees any of it. So a PyTorch checkpoint's tensors are
counted before torch runs (zip storages, or the persistent ids of a legacy pickle) and the file is refused when
that many tensors would cost more than the bound allows for a file of its size (:func:`torch_tensor_budget`).
An ONNX graph is held to it the same way (:func:`onnx_graph_budget`): protobuf and hts build objects for every
initializer and node, and the cheapest initializer takes ~22 bytes of file. Every file's count is also capped
at ``MAX_TENSORS``, checked before the tensors are built.
"""

from __future__ import annotations

__all__ = ["MAX_TENSORS", "MAX_TENSOR_BYTES", "ONNX_BYTES_PER_ENTRY", "ONNX_BYTES_PER_INITIALIZER",
           "TORCH_BYTES_PER_TENSOR", "TORCH_FIXED_BYTES", "onnx_graph_budget", "torch_tensor_budget"]

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


#: What protobuf's objects and hts's listing, record and skipped row cost per ONNX initializer, and per other
#: graph entry (node, input, output, value_info), with margin (measured on floods: ~1.4 KiB per 1×1 initializer
#: listed and loaded, ~2.4 KiB with its row in ``hts.analyze``; ~0.9 KiB per Identity node).
ONNX_BYTES_PER_INITIALIZER = 2560
ONNX_BYTES_PER_ENTRY = 1024


def onnx_graph_budget(file_size: int) -> int:
    """The bytes of objects an ONNX file of ``file_size`` bytes may cost to list and analyse and stay within the
    memory bound: ``4 × file_size + TORCH_FIXED_BYTES``, against ``ONNX_BYTES_PER_INITIALIZER`` per initializer
    and ``ONNX_BYTES_PER_ENTRY`` per other graph entry. Real models hold kilobytes to megabytes per initializer
    (a 1 MB model may hold ~4,900 initializers and nodes); only a flood of tiny ones reaches it."""
    return 4 * max(file_size, 0) + TORCH_FIXED_BYTES
