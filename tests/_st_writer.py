"""A minimal safetensors writer for tests (independent of hts's reader): raw bytes + JSON header."""

from __future__ import annotations

import json
import struct

import numpy as np

CODES = {np.dtype(np.float64): "F64", np.dtype(np.float32): "F32", np.dtype(np.float16): "F16",
         np.dtype(np.int64): "I64", np.dtype(np.int32): "I32", np.dtype(np.int8): "I8", np.dtype(np.uint8): "U8",
         np.dtype(np.bool_): "BOOL"}


def header_and_data(tensors: dict, dtypes: dict | None = None, metadata: dict | None = None) -> tuple[dict, bytes]:
    """``tensors``: name -> numpy array, or (dtype code, raw bytes, shape) for dtypes numpy lacks (BF16, F8)."""
    header: dict = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    chunks, offset = [], 0
    for name, value in tensors.items():
        if isinstance(value, tuple):
            code, raw, shape = value
        else:
            code, raw, shape = CODES[value.dtype], np.ascontiguousarray(value).tobytes(), list(value.shape)
        header[name] = {"dtype": code, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    return header, b"".join(chunks)


def encode(header: dict, data: bytes) -> bytes:
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def write(path, tensors: dict, metadata: dict | None = None) -> None:
    header, data = header_and_data(tensors, metadata=metadata)
    with open(path, "wb") as f:
        f.write(encode(header, data))


def bf16_bytes(values: np.ndarray) -> bytes:
    """bfloat16 encoding (round to nearest even) of float32 values."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype(np.uint16).tobytes()
