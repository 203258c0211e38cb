"""What a file is, from its content (magic bytes, zip members, JSON shape), whatever its name says.

``sniff(path)`` reads at most the first 4 kB (and a zip's member list) and returns a ``FileKind``: a short
name, a description for messages, and the reader that handles it, as an import path
(``"hts.adapters.gguf_file:from_gguf"``). Readers of other formats are looked up lazily by that path when a
file of their kind is opened, so a reader that is not part of this installation degrades into a clear error
("an ONNX model: this hts has no reader for it ...") instead of an import failure.

Signatures (all checked at offset 0 unless said):

| kind | content |
|---|---|
| gguf | ``GGUF`` |
| npy | ``\\x93NUMPY`` |
| hdf5 (Keras ``.h5``) | ``\\x89HDF\\r\\n\\x1a\\n`` |
| zip: npz / keras / torch | ``PK``; members all ``*.npy`` / ``config.json`` + ``model.weights.h5`` / ``*/data.pkl`` |
| torch (legacy pickle) | ``\\x80`` then a pickle protocol 2-5 |
| flax (msgpack) | a msgpack map (``\\x81``-``\\x8f``, ``\\xde``, ``\\xdf``) whose first key is a string |
| onnx | a protobuf ModelProto: field 1 (ir_version, varint 1-20) followed by another ModelProto field |
| safetensors | 8-byte little-endian length N ≤ file size - 8, then ``{`` |
| orbax (an OCDBT ``manifest.ocdbt``) | ``\\x0c\\xdb\\x3a\\x2a``: its checkpoint folder is read |
| not models | empty, text, JSON, gzip, tar, TensorFlow Lite, a zip of other files, unrecognised binary |
"""

from __future__ import annotations

import importlib
import os
import struct
import zipfile
from dataclasses import dataclass
from typing import Callable

from ..errors import ModelFileError

__all__ = ["FileKind", "model_kind", "reader_for", "sniff"]

HEAD_BYTES = 4096


@dataclass(frozen=True)
class FileKind:
    name: str  # "gguf", "safetensors", "torch", "npy", "npz", "onnx", "keras", "hdf5", "flax", "orbax", or a non-model kind
    description: str  # for messages: "a GGUF file (llama.cpp)"
    reader: str = ""  # "module:function" that reads it; "" when no reader applies

    @property
    def is_model(self) -> bool:
        return bool(self.reader)


_READERS = {
    "gguf": ("a GGUF file (llama.cpp / Ollama)", "hts.adapters.gguf_file:from_gguf"),
    "safetensors": ("a safetensors file", "hts.adapters.safetensors_model:from_safetensors"),
    "torch": ("a PyTorch checkpoint", "hts.adapters.torch_checkpoint:from_torch_checkpoint"),
    "npy": ("a NumPy .npy array", "hts.adapters.numpy_files:from_npy"),
    "npz": ("a NumPy .npz archive", "hts.adapters.numpy_files:from_npz"),
    "onnx": ("an ONNX model", "hts.adapters.onnx_file:from_onnx"),
    "keras": ("a Keras 3 .keras archive", "hts.adapters.keras_file:from_keras"),
    "hdf5": ("an HDF5 file (a legacy Keras .h5 model?)", "hts.adapters.keras_file:from_keras"),
    "flax": ("a msgpack file (a Flax/JAX checkpoint?)", "hts.adapters.flax_file:from_flax"),
    "orbax": ("an OCDBT manifest (of an Orbax checkpoint)", "hts.adapters.orbax_checkpoint:from_orbax_manifest"),
}


def model_kind(name: str) -> FileKind:
    """The ``FileKind`` of a model format by its name ("gguf", "torch", ...)."""
    description, reader = _READERS[name]
    return FileKind(name, description, reader)


def sniff(path: str) -> FileKind:
    """The kind of the file at ``path``, by content (see the module docstring)."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(HEAD_BYTES)
    except OSError as err:
        raise ModelFileError(path, f"cannot read: {err.strerror or err}") from err
    if not head:
        return FileKind("empty", "an empty file (0 bytes)")
    if head.startswith(b"GGUF"):
        return model_kind("gguf")
    if head.startswith(b"\x0c\xdb\x3a\x2a"):
        return model_kind("orbax")
    if head.startswith(b"\x93NUMPY"):
        return model_kind("npy")
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return model_kind("hdf5")
    if head.startswith(b"PK"):
        return _zip_kind(path)
    if _is_safetensors(head, size):  # before the pickle and msgpack tests: its first byte is a length's
        return model_kind("safetensors")
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return model_kind("torch")
    if _is_msgpack_map(head):
        return model_kind("flax")
    if _is_onnx(head):
        return model_kind("onnx")
    if head.startswith(b"\x1f\x8b"):
        return FileKind("gzip", "gzip-compressed data (decompress it first)")
    if len(head) > 262 and head[257:262] == b"ustar":
        return FileKind("tar", "a tar archive (extract it first)")
    if head[4:8] == b"TFL3":
        return FileKind("tflite", "a TensorFlow Lite model (not supported)")
    text = _as_text(head)
    if text is not None:
        stripped = text.lstrip()
        if stripped[:1] in ("{", "["):
            return FileKind("json", "a JSON file, not model weights (a config or an index? pass the model's "
                                    "folder, or a *.safetensors.index.json)")
        return FileKind("text", "looks like text")
    return FileKind("unknown", f"unrecognised binary data (first bytes {head[:8].hex(' ')})")


def reader_for(kind: FileKind, path: str) -> Callable:
    """The function that reads files of ``kind``; ``ModelFileError`` when there is none in this installation."""
    if not kind.reader:
        raise ModelFileError(path, f"not a model file ({kind.description})")
    module, _, function = kind.reader.partition(":")
    try:
        return getattr(importlib.import_module(module), function)
    except ModuleNotFoundError as err:
        if err.name and module.startswith(err.name):  # the reader module itself is missing, not a dependency
            raise ModelFileError(path, f"{kind.description}: this hts has no reader for it ({module} is not "
                                       "installed; a newer hts reads it)") from None
        raise
    except AttributeError:
        raise ModelFileError(path, f"{kind.description}: this hts has no reader for it ({kind.reader} is "
                                   "missing)") from None


def _zip_kind(path: str) -> FileKind:
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        return FileKind("bad-zip", f"a truncated or damaged zip archive ({str(err)[:120] or type(err).__name__})")
    if names and all(n.endswith(".npy") for n in names):
        return model_kind("npz")
    if "config.json" in names and "model.weights.h5" in names:
        return model_kind("keras")
    if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
        return model_kind("torch")
    first = ", ".join(names[:3]) + ("..." if len(names) > 3 else "")
    return FileKind("zip", f"a zip archive of {len(names)} file(s) that is not a model ({first})")


def _is_msgpack_map(head: bytes) -> bool:
    b = head[0]
    if 0x81 <= b <= 0x8F:
        key = head[1:2]
    elif b == 0xDE:
        key = head[3:4]
    elif b == 0xDF:
        key = head[5:6]
    else:
        return False
    return bool(key) and (0xA0 <= key[0] <= 0xBF or key[0] in (0xD9, 0xDA, 0xDB))  # a str key


def _is_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 9:
        return False
    (length,) = struct.unpack("<Q", head[:8])
    return 2 <= length <= size - 8 and head[8:9] == b"{"


def _is_onnx(head: bytes) -> bool:
    # ModelProto starts with ir_version (field 1, varint: tag 0x08) in every exporter; then producer_name (2),
    # producer_version (3), domain (4), model_version (5), doc_string (6), graph (7) or opset_import (8).
    return (len(head) >= 3 and head[0] == 0x08 and 1 <= head[1] <= 20
            and head[2] in (0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42))


def _as_text(head: bytes) -> str | None:
    if b"\x00" in head:
        return None
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start >= len(head) - 3:  # a character cut by the 4 kB window
            return head[: err.start].decode("utf-8")
        return None
