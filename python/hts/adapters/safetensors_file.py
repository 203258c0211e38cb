"""A small, strict reader of the safetensors format: no torch, no ``safetensors`` package.

Format: an 8-byte little-endian unsigned header length H, H bytes of UTF-8 JSON, then the data buffer. The JSON
maps each tensor name to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets relative to the buffer),
plus an optional ``"__metadata__"`` of strings. Nothing in the header is trusted before it is checked:

- 8 <= file size; H <= 100 MB and H <= file size - 8; the JSON is a well-formed object, without duplicate keys;
- at most ``MAX_TENSORS`` (200,000) tensors, checked before the JSON is parsed (by counting the header's
  ``{`` and ``[``, which bounds the objects and lists parsing would build): a legal but hostile header of a
  million tiny or empty entries is refused in milliseconds instead of costing gigabytes and minutes;
- every entry has a string dtype, a shape of non-negative ints and two int offsets 0 <= begin <= end <= buffer;
- for a known dtype, itemsize · prod(shape) == end - begin (Python ints: no overflow);
- no two tensors overlap.

A bad file raises ``hts.ModelFileError`` naming the file (and the tensor); reading never allocates more than
the tensor's size as the header states it, which the checks bound by the file's size. Data is read with plain
``readinto`` (no memory map), so a file truncated or rewritten underneath raises an error instead of a SIGBUS,
and a file whose size or mtime changed since its header was read is refused.

dtypes: F64, F32, F16 as stored; BF16, F8_E4M3, F8_E5M2 widened to float32 exactly; integer and boolean
tensors are listed with a skip reason (quantised or index data, not a weight matrix); other dtypes likewise.
"""

from __future__ import annotations

import json
import os
import re
import struct
from dataclasses import dataclass, field

import numpy as np

from ..errors import ModelFileError
from .limits import MAX_TENSORS as _MAX_TENSORS
from .dtypes import CHUNK_ELEMENTS, bf16_to_float32, float8_to_float32

__all__ = ["MAX_HEADER_BYTES", "MAX_TENSORS", "SafetensorsFile", "TensorInfo", "natural_key", "read_header"]

#: The largest header accepted (the reference implementation's limit too).
MAX_HEADER_BYTES = 100_000_000
#: The most tensors one file may hold: ``limits.MAX_TENSORS``, as for every format. Each entry is one object
#: and two lists, so a header may open at most 3 containers per tensor (+ metadata).
MAX_TENSORS = _MAX_TENSORS

#: dtype -> (bytes per element, what ``load`` returns).
DTYPES = {
    "F64": (8, "float64"), "F32": (4, "float32"), "F16": (2, "float16"), "BF16": (2, "bfloat16"),
    "F8_E4M3": (1, "float8_e4m3"), "F8_E5M2": (1, "float8_e5m2"),
    "I64": (8, "int64"), "I32": (4, "int32"), "I16": (2, "int16"), "I8": (1, "int8"),
    "U64": (8, "uint64"), "U32": (4, "uint32"), "U16": (2, "uint16"), "U8": (1, "uint8"),
    "BOOL": (1, "bool"), "F8_E8M0": (1, "float8_e8m0"), "C64": (8, "complex64"),
}
FLOAT_DTYPES = ("F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2")
_NUMPY = {"F64": np.float64, "F32": np.float32, "F16": np.float16}


def natural_key(name: str) -> list:
    """Sort key that orders ``layers.2`` before ``layers.10``."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str  # as stored: "BF16", "F32", ...
    shape: tuple
    begin: int  # absolute byte offsets in the file
    end: int

    @property
    def dtype_name(self) -> str:
        return DTYPES.get(self.dtype, (0, self.dtype.lower()))[1]

    @property
    def skip_reason(self) -> str:
        if self.dtype in FLOAT_DTYPES:
            return ""
        if self.dtype in DTYPES and (self.dtype.startswith(("I", "U")) or self.dtype == "BOOL"):
            return f"{self.dtype} tensor: integer/boolean data (quantised weights or indices), not analysed"
        return f"dtype {self.dtype} is not supported"


@dataclass(frozen=True)
class SafetensorsFile:
    """A checked safetensors header: the tensors in natural name order, and the file's identity."""

    path: str
    tensors: dict  # name -> TensorInfo, natural order
    metadata: dict
    size: int
    mtime_ns: int
    data_start: int = field(repr=False)

    def load(self, name: str) -> np.ndarray:
        """The tensor's values (float16/32/64; BF16 and FP8 as float32), read from the file now."""
        info = self.tensors[name]
        if info.skip_reason:
            raise ModelFileError(self.path, info.skip_reason, tensor=name)
        with open(self.path, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_size != self.size or st.st_mtime_ns != self.mtime_ns:
                raise ModelFileError(self.path, "the file changed since its header was read; open it again",
                                     tensor=name)
            f.seek(info.begin)
            count = int(np.prod(info.shape, dtype=np.int64)) if info.shape else 1
            if info.dtype in _NUMPY:
                out = np.empty(count, dtype=_NUMPY[info.dtype])
                _read_exactly(f, out, self.path, name)
            else:
                out = np.empty(count, dtype=np.float32)
                raw_dtype = np.uint16 if info.dtype == "BF16" else np.uint8
                buf = np.empty(min(count, CHUNK_ELEMENTS), dtype=raw_dtype)
                for start in range(0, count, CHUNK_ELEMENTS):
                    n = min(CHUNK_ELEMENTS, count - start)
                    _read_exactly(f, buf[:n], self.path, name)
                    if info.dtype == "BF16":
                        bf16_to_float32(buf[:n], out=out[start:start + n])
                    else:
                        out[start:start + n] = float8_to_float32(buf[:n], info.dtype)
        return out.reshape(info.shape)


def _read_exactly(f, out: np.ndarray, path: str, name: str) -> None:
    view = memoryview(out).cast("B")
    got = f.readinto(view)
    if got != view.nbytes:
        raise ModelFileError(path, f"file truncated: expected {view.nbytes} bytes of data, got {got}", tensor=name)


def _no_duplicates(pairs: list) -> dict:
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def read_header(path: str | os.PathLike) -> SafetensorsFile:
    """Read and check a safetensors header (see the module docstring); no tensor data is read."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            size = st.st_size
            if size < 8:
                raise ModelFileError(path, f"not a safetensors file: {size} bytes, shorter than the 8-byte header length")
            head = f.read(8)
            if len(head) != 8:  # shrunk since the fstat: being rewritten
                raise ModelFileError(path, "file truncated while its header was read (is it being written?)")
            (length,) = struct.unpack("<Q", head)
            if length > MAX_HEADER_BYTES:
                raise ModelFileError(path, f"header length {length} exceeds the {MAX_HEADER_BYTES}-byte limit "
                                           "(not a safetensors file, or a corrupt one)")
            if length > size - 8:
                raise ModelFileError(path, f"header length {length} runs past the end of the {size}-byte file")
            raw = f.read(length)
    except OSError as err:
        raise ModelFileError(path, f"cannot read: {err.strerror or err}") from err
    if len(raw) != length:
        raise ModelFileError(path, "file truncated inside the header")
    containers = raw.count(b"{") + raw.count(b"[")
    if containers > 3 * MAX_TENSORS + 16:
        raise ModelFileError(path, f"header opens {containers} JSON objects/lists: more than the "
                                   f"{MAX_TENSORS} tensors a file may hold (3 per tensor) allow")
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise ModelFileError(path, f"header is not valid JSON: {str(err)[:200]}") from None
    if not isinstance(header, dict):
        raise ModelFileError(path, f"header is a JSON {type(header).__name__}, not an object")
    data_start = 8 + length
    buffer = size - data_start
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict):
        raise ModelFileError(path, "__metadata__ is not an object")
    if len(header) > MAX_TENSORS:
        raise ModelFileError(path, f"{len(header)} tensors: more than the {MAX_TENSORS} a file may hold")
    infos = []
    for name, entry in header.items():
        infos.append(_check_entry(path, name, entry, buffer, data_start))
    spans = sorted((i for i in infos if i.end > i.begin), key=lambda i: i.begin)
    for a, b in zip(spans, spans[1:]):
        if b.begin < a.end:
            raise ModelFileError(path, f"tensors {a.name!r} and {b.name!r} overlap in the data buffer")
    tensors = {i.name: i for i in sorted(infos, key=lambda i: natural_key(i.name))}
    return SafetensorsFile(path, tensors, dict(metadata), size, st.st_mtime_ns, data_start)


def _check_entry(path: str, name: str, entry, buffer: int, data_start: int) -> TensorInfo:
    def bad(message: str) -> ModelFileError:
        return ModelFileError(path, f"bad header entry: {message}", tensor=name)

    if not name:
        raise bad("empty tensor name")
    if not isinstance(entry, dict):
        raise bad("not an object")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not isinstance(dtype, str) or not dtype:
        raise bad(f"dtype {dtype!r} is not a string")
    if not isinstance(shape, list) or not all(_is_int(s) and s >= 0 for s in shape):
        raise bad(f"shape {shape!r} is not a list of non-negative integers")
    if len(shape) > 64:
        raise bad(f"{len(shape)} dimensions")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) for o in offsets)):
        raise bad(f"data_offsets {offsets!r} is not a pair of integers")
    begin, end = offsets
    if not 0 <= begin <= end <= buffer:
        raise bad(f"data_offsets [{begin}, {end}] outside the {buffer}-byte data buffer")
    if dtype in DTYPES:
        count = 1
        for s in shape:
            count *= s
        expected = count * DTYPES[dtype][0]
        if expected != end - begin:
            raise bad(f"{dtype} {shape} needs {expected} bytes but data_offsets span {end - begin}")
    nonzero = 1
    for s in shape:
        nonzero *= max(s, 1)
    if nonzero > 2**60:  # numpy refuses such a shape even with a zero dimension (size in bytes past int64)
        raise bad(f"shape {shape} is too large")
    return TensorInfo(name, dtype, tuple(shape), data_start + begin, data_start + end)
