"""A small, strict reader of GGUF headers (llama.cpp's model format): no ``gguf`` package, no memory map.

Layout (all integers little-endian, or all big-endian in a big-endian file):

    magic "GGUF" | version u32 | tensor_count | kv_count | kv_count × (key string, value type u32, value)
    | tensor_count × (name string, n_dims u32, n_dims × dim, ggml type u32, offset u64)
    | padding to ``general.alignment`` (default 32) | data

Version 1 stores counts, string lengths, array lengths and dims as u32; versions 2 and 3 as u64 (version 3 only
adds big-endian files, recognised by a byte-swapped version). A string is its byte length then UTF-8 bytes.
A tensor's dims are ggml's ``ne``: ``ne[0]`` varies fastest, so its numpy shape is the dims reversed, and
``offset`` counts from the start of the data section.

Nothing is trusted before it is checked, and nothing is allocated on a header's word alone: every length,
count and dimension is checked against the bytes left in the file before anything is read or reserved
(counts × the smallest possible entry size ≤ bytes left; a string ≤ bytes left), arrays nest at most
``MAX_ARRAY_DEPTH`` deep, tensors have 1..4 dims whose product (zeros counted as 1) stays below 2⁶⁰, a
quantised tensor's rows are whole blocks, offsets are multiples of the alignment, every tensor lies inside the
file and no two overlap, keys and tensor names are valid UTF-8 and unique. Any violation raises
``hts.ModelFileError`` naming the file (and the tensor or key).
"""

from __future__ import annotations

import logging
import os
import struct
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import ModelFileError
from . import limits

logger = logging.getLogger("hts")

__all__ = ["GGML_TYPES", "GGUFFile", "GGUFTensorInfo", "GGUFTensors", "MAX_ARRAY_DEPTH", "read_gguf"]

MAGIC = b"GGUF"
MAX_ARRAY_DEPTH = 4
#: Metadata arrays longer than this are summarised, not kept (the tokenizer's vocabulary, merges...).
MAX_KEPT_ARRAY = 1024
#: At most this many metadata values are kept (a scalar or string is one, an array one + its items): real
#: headers hold a few hundred (long arrays are summarised anyway); the entries past it are read, checked and
#: counted (``GGUFFile.metadata_dropped``, with a warning), so a flood of tiny entries stays within the memory
#: bound. The keys the reader needs are kept whatever the count.
MAX_KEPT_METADATA = 32_768
_NEEDED_KEYS = frozenset({"general.alignment", "general.architecture"})
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4

#: ggml type id -> (name, values per block, bytes per block). Ids 4, 5, 31-33, 36-38 were removed from ggml.
GGML_TYPES = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20), 6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 36), 10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74), 18: ("IQ3_XXS", 256, 98), 19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110), 22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1), 25: ("I16", 1, 2), 26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56), 30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17), 40: ("NVFP4", 64, 36), 41: ("Q1_0", 128, 18),
}

# Metadata value types: id -> (name, struct code or None for string/array).
_VALUE_TYPES = {
    0: ("UINT8", "B"), 1: ("INT8", "b"), 2: ("UINT16", "H"), 3: ("INT16", "h"), 4: ("UINT32", "I"),
    5: ("INT32", "i"), 6: ("FLOAT32", "f"), 7: ("BOOL", "?"), 8: ("STRING", None), 9: ("ARRAY", None),
    10: ("UINT64", "Q"), 11: ("INT64", "q"), 12: ("FLOAT64", "d"),
}


@dataclass(frozen=True)
class GGUFTensorInfo:
    name: str
    type_id: int
    dims: tuple  # ggml ne order: dims[0] varies fastest
    begin: int  # absolute byte offset in the file
    nbytes: int | None  # None for a type whose block size is unknown

    @property
    def type_name(self) -> str:
        return GGML_TYPES[self.type_id][0] if self.type_id in GGML_TYPES else f"type {self.type_id}"

    @property
    def shape(self) -> tuple:
        """numpy (C-order) shape: the dims reversed, so a Linear weight is (out, in)."""
        return tuple(reversed(self.dims))

    @property
    def count(self) -> int:
        n = 1
        for d in self.dims:
            n *= d
        return n


class GGUFTensors(Sequence):
    """The checked tensors of one header in file order, each a ``GGUFTensorInfo`` made when it is asked for.

    Stored column-wise (a tensor's *row* is its place in the file): the names' UTF-8 bytes in one buffer with
    their offsets, flat ``array`` columns of type ids, dims, absolute offsets and byte sizes, so a header of
    200,000 tiny tensors costs its names' bytes + ~50 bytes per tensor, not a Python object (or even a ``str``)
    each (docs/formats.md, "Limits").
    """

    __slots__ = ("_blob", "_name_start", "_types", "_dims", "_dim_start", "_begin", "_nbytes")

    def __init__(self, blob: bytes, name_start: array, types: array, dims: array, dim_start: array, begin: array,
                 nbytes: array) -> None:
        self._blob, self._name_start = blob, name_start
        self._types, self._dims, self._dim_start = types, dims, dim_start
        self._begin, self._nbytes = begin, nbytes  # nbytes -1: a type whose block size is unknown

    def __len__(self) -> int:
        return len(self._types)

    def name(self, row: int) -> str:
        """The name of one row (checked valid UTF-8 when the header was read)."""
        return self._blob[self._name_start[row]:self._name_start[row + 1]].decode("utf-8")

    def names(self) -> list:
        """The names in file order, by row (a new list: a ``str`` per tensor)."""
        return [self.name(r) for r in range(len(self))]

    def ends_with(self, suffix: bytes) -> np.ndarray:
        """Whether each row's name ends with ``suffix`` (bool per row, without making the names)."""
        blob = np.frombuffer(self._blob, np.uint8)
        ends = np.frombuffer(self._name_start, np.int64)[1:]
        out = ends - np.frombuffer(self._name_start, np.int64)[:-1] >= len(suffix)
        for k, byte in enumerate(suffix):
            where = np.flatnonzero(out)
            out[where] = blob[ends[where] - len(suffix) + k] == byte
        return out

    def any_name_contains(self, part: bytes) -> bool:
        """Whether some name may contain ``part`` (also true when it spans two names: a quick filter)."""
        return part in self._blob

    def __getitem__(self, row):
        if isinstance(row, slice):
            return [self[r] for r in range(*row.indices(len(self)))]
        if row < 0:
            row += len(self)
        if not 0 <= row < len(self):
            raise IndexError(f"tensor row {row} out of range for {len(self)} tensors")
        nbytes = self._nbytes[row]
        return GGUFTensorInfo(self.name(row), self._types[row],
                              tuple(self._dims[self._dim_start[row]:self._dim_start[row + 1]]), self._begin[row],
                              None if nbytes < 0 else nbytes)


@dataclass(frozen=True)
class GGUFFile:
    """A checked GGUF header: metadata, tensors in file order, and the file's identity."""

    path: str
    version: int
    byte_order: str  # "<" or ">"
    metadata: dict
    tensors: GGUFTensors
    alignment: int
    data_start: int
    size: int
    mtime_ns: int = field(repr=False)
    #: metadata entries read and checked but not kept (past ``MAX_KEPT_METADATA`` values in all)
    metadata_dropped: int = 0

    @property
    def architecture(self) -> str:
        arch = self.metadata.get("general.architecture")
        return arch if isinstance(arch, str) else ""


class _Reader:
    """Sequential reads that never go past the end of the file and never trust a length before checking it."""

    def __init__(self, f, path: str, size: int, order: str) -> None:
        self.f, self.path, self.size, self.order = f, path, size, order
        self.pos = 0

    def left(self) -> int:
        return self.size - self.pos

    def take(self, n: int, what: str, tensor: str | None = None) -> bytes:
        if n > self.left():
            raise ModelFileError(self.path, f"truncated: {what} needs {n} bytes at offset {self.pos}, only "
                                            f"{self.left()} left in the file", tensor=tensor)
        raw = self.f.read(n)
        if len(raw) != n:
            raise ModelFileError(self.path, "file truncated while its header was read (is it being written?)",
                                 tensor=tensor)
        self.pos += n
        return raw

    def skip(self, n: int, what: str) -> None:
        if n > self.left():
            raise ModelFileError(self.path, f"truncated: {what} needs {n} bytes at offset {self.pos}, only "
                                            f"{self.left()} left in the file")
        self.f.seek(n, os.SEEK_CUR)
        self.pos += n

    def unpack(self, code: str, what: str, tensor: str | None = None):
        return struct.unpack(self.order + code, self.take(struct.calcsize(code), what, tensor))[0]


def read_gguf(path: str | os.PathLike) -> GGUFFile:
    """Read and check a GGUF header (see the module docstring); no tensor data is read."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            return _parse(f, path, st.st_size, st.st_mtime_ns)
    except OSError as err:
        raise ModelFileError(path, f"cannot read: {err.strerror or err}") from err


def _parse(f, path: str, size: int, mtime_ns: int) -> GGUFFile:
    r = _Reader(f, path, size, "<")
    magic = r.take(4, "the magic") if size >= 4 else b""
    if magic != MAGIC:
        raise ModelFileError(path, f"not a GGUF file (starts with {magic[:4]!r}, expected b'GGUF')")
    raw_version = r.take(4, "the version")
    version = struct.unpack("<I", raw_version)[0]
    if version & 0xFFFF == 0 and struct.unpack(">I", raw_version)[0] in (1, 2, 3):
        r.order = ">"
        version = struct.unpack(">I", raw_version)[0]
    if version not in (1, 2, 3):
        raise ModelFileError(path, f"GGUF version {version} is not supported (hts reads versions 1, 2 and 3)")
    n = "I" if version == 1 else "Q"  # counts and lengths
    width = struct.calcsize(n)
    tensor_count = r.unpack(n, "the tensor count")
    kv_count = r.unpack(n, "the metadata count")
    # The smallest metadata entry: empty key + type + a 1-byte value; the smallest tensor entry: empty name
    # + n_dims + type + offset. More entries than the file could hold is a lie, refused before any loop.
    if kv_count * (width + 4 + 1) > r.left():
        raise ModelFileError(path, f"header claims {kv_count} metadata entries, more than the file can hold")
    if tensor_count * (width + 4 + 4 + 8) > r.left():
        raise ModelFileError(path, f"header claims {tensor_count} tensors, more than the file can hold")
    if tensor_count > limits.MAX_TENSORS:
        raise ModelFileError(path, f"header claims {tensor_count} tensors: more than the {limits.MAX_TENSORS} a "
                                   "file may hold")
    metadata: dict = {}
    # every key's bytes (+ offsets and hashes) for the duplicate check after the loop; values are kept while
    # they hold at most MAX_KEPT_METADATA values in all (a flood of tiny entries would cost ~8 x its bytes)
    key_blob, key_start, key_hashes = bytearray(), array("q", [0]), array("q")
    kept = dropped = 0
    for i in range(kv_count):
        raw, key = _raw_string(r, n, f"metadata key #{i}")
        key_blob += raw
        key_start.append(len(key_blob))
        key_hashes.append(hash(raw))
        vtype = r.unpack("I", f"the type of metadata {key!r}")
        value = _value(r, n, vtype, key, 0)
        cost = _values_in(value)
        if kept + cost <= MAX_KEPT_METADATA or key in _NEEDED_KEYS:
            metadata[key] = value
            kept += cost
        else:
            dropped += 1
        del value
    _check_unique(bytes(key_blob), key_start, key_hashes,
                  lambda key: ModelFileError(path, f"duplicate metadata key {key!r}"))
    del key_blob, key_start, key_hashes
    if dropped:
        logger.warning("%s: %d metadata entries past the first %d values are not kept (a header of very many "
                       "small entries)", path, dropped, MAX_KEPT_METADATA)
    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or isinstance(alignment, bool) or alignment <= 0 \
            or alignment & (alignment - 1):
        raise ModelFileError(path, f"general.alignment {alignment!r} is not a positive power of two")
    # the names' bytes in one buffer (+ offsets), their hashes for the duplicate check after the loop: a set
    # of 200,000 names would cost more than the file's bytes
    blob, name_start, hashes = bytearray(), array("q", [0]), array("q")
    types, dims, dim_start, offsets = array("I"), array("Q"), array("q", [0]), array("Q")
    for i in range(tensor_count):
        raw, name = _raw_string(r, n, f"the name of tensor #{i}")
        n_dims = r.unpack("I", "the number of dimensions", name)
        if not 1 <= n_dims <= MAX_DIMS:
            raise ModelFileError(path, f"{n_dims} dimensions (GGUF tensors have 1 to {MAX_DIMS})", tensor=name)
        dims.extend(r.unpack(n, "the dimensions", name) for _ in range(n_dims))
        dim_start.append(len(dims))
        types.append(r.unpack("I", "the ggml type", name))
        offsets.append(r.unpack("Q", "the data offset", name))
        blob += raw
        name_start.append(len(blob))
        hashes.append(hash(raw))
    blob = bytes(blob)
    _check_unique(blob, name_start, hashes, lambda name: ModelFileError(path, "duplicate tensor name", tensor=name))
    del hashes
    data_start = -(-r.pos // alignment) * alignment
    if data_start > size:
        raise ModelFileError(path, f"truncated: the data section starts at {data_start}, past the end of the "
                                   f"{size}-byte file")
    begin, nbytes = array("q"), array("q")
    for row in range(tensor_count):
        name = blob[name_start[row]:name_start[row + 1]].decode("utf-8")
        info = _check_tensor(path, name, tuple(dims[dim_start[row]:dim_start[row + 1]]), types[row], offsets[row],
                             alignment, data_start, size)
        begin.append(info.begin)
        nbytes.append(-1 if info.nbytes is None else info.nbytes)
    del offsets
    tensors = GGUFTensors(blob, name_start, types, dims, dim_start, begin, nbytes)
    _check_overlaps(path, tensors, begin, nbytes)
    return GGUFFile(path, version, r.order, metadata, tensors, alignment, data_start, size, mtime_ns, dropped)


def _check_unique(blob: bytes, name_start: array, hashes: array, error) -> None:
    """Raise ``error(name)`` for the first name (in file order) that an earlier one repeats, as a check while
    reading would: only names with equal hashes are compared, so this holds 16 bytes per name, not a set."""
    if len(hashes) < 2:
        return
    h = np.frombuffer(hashes, np.int64)
    order = np.argsort(h, kind="stable")  # equal hashes stay in file order
    sorted_h = h[order]
    repeated = np.unique(sorted_h[1:][sorted_h[1:] == sorted_h[:-1]])  # few: arrays of that size only
    first = None
    for value in repeated:
        seen = set()
        lo, hi = np.searchsorted(sorted_h, value, "left"), np.searchsorted(sorted_h, value, "right")
        for row in map(int, order[lo:hi]):
            name = blob[name_start[row]:name_start[row + 1]]
            if name in seen:
                first = row if first is None else min(first, row)
                break
            seen.add(name)
    if first is not None:
        raise error(blob[name_start[first]:name_start[first + 1]].decode("utf-8"))


def _check_overlaps(path: str, names: "GGUFTensors", begin: array, nbytes: array) -> None:
    """ModelFileError naming the first two tensors (by offset) whose bytes overlap."""
    if not len(names):
        return
    start = np.frombuffer(begin, np.int64)
    length = np.frombuffer(nbytes, np.int64)
    spans = np.flatnonzero(length > 0)
    spans = spans[np.argsort(start[spans], kind="stable")]
    clash = np.flatnonzero(start[spans[1:]] < start[spans[:-1]] + length[spans[:-1]])
    if clash.size:
        a, b = int(spans[clash[0]]), int(spans[clash[0] + 1])
        raise ModelFileError(path, f"tensors {names.name(a)!r} and {names.name(b)!r} overlap in the data "
                                   "section")


def _values_in(value) -> int:
    """How many values ``value`` holds: 1 for a scalar or string, an array 1 + its items' values."""
    if isinstance(value, list):
        return 1 + sum(_values_in(v) for v in value) if value and isinstance(value[0], list) else 1 + len(value)
    return 1


def _raw_string(r: _Reader, n: str, what: str) -> tuple[bytes, str]:
    """A string's bytes and its text (strict UTF-8)."""
    length = r.unpack(n, f"the length of {what}")
    raw = r.take(length, what)
    try:
        return raw, raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelFileError(r.path, f"{what} is not valid UTF-8: {raw[:40]!r}") from None


def _string(r: _Reader, n: str, what: str, *, strict: bool) -> str:
    length = r.unpack(n, f"the length of {what}")
    raw = r.take(length, what)
    try:
        return raw.decode("utf-8", errors="strict" if strict else "replace")
    except UnicodeDecodeError:
        raise ModelFileError(r.path, f"{what} is not valid UTF-8: {raw[:40]!r}") from None


def _value(r: _Reader, n: str, vtype: int, key: str, depth: int):
    if vtype not in _VALUE_TYPES:
        raise ModelFileError(r.path, f"metadata {key!r} has unknown value type {vtype}")
    name, code = _VALUE_TYPES[vtype]
    if code is not None:
        return r.unpack(code, f"metadata {key!r}")
    if name == "STRING":
        return _string(r, n, f"metadata {key!r}", strict=False)
    if depth >= MAX_ARRAY_DEPTH:
        raise ModelFileError(r.path, f"metadata {key!r}: arrays nested more than {MAX_ARRAY_DEPTH} deep")
    item_type = r.unpack("I", f"the item type of metadata {key!r}")
    count = r.unpack(n, f"the length of metadata {key!r}")
    if item_type not in _VALUE_TYPES:
        raise ModelFileError(r.path, f"metadata {key!r}: array of unknown value type {item_type}")
    item_name, item_code = _VALUE_TYPES[item_type]
    smallest = struct.calcsize(item_code) if item_code else struct.calcsize(n) + (4 if item_name == "ARRAY" else 0)
    if count * smallest > r.left():
        raise ModelFileError(r.path, f"metadata {key!r}: array of {count} {item_name} items, more than the file "
                                     "can hold")
    if count > MAX_KEPT_ARRAY:
        if item_code is not None:
            r.skip(count * struct.calcsize(item_code), f"metadata {key!r}")
        else:
            for _ in range(count):
                if item_name == "STRING":
                    r.skip(r.unpack(n, f"an item of metadata {key!r}"), f"an item of metadata {key!r}")
                else:
                    _value(r, n, item_type, key, depth + 1)
        return f"<array of {count} {item_name.lower()}>"
    if item_code is not None:
        size = struct.calcsize(item_code)
        raw = r.take(count * size, f"metadata {key!r}")
        return list(struct.unpack(f"{r.order}{count}{item_code}", raw))
    return [_value(r, n, item_type, key, depth + 1) for _ in range(count)]


def _check_tensor(path: str, name: str, dims: tuple, type_id: int, offset: int, alignment: int,
                  data_start: int, size: int) -> GGUFTensorInfo:
    def bad(message: str) -> ModelFileError:
        return ModelFileError(path, message, tensor=name)

    count = 1
    nonzero = 1  # numpy refuses a shape whose nonzero dims multiply past int64, even with a zero among them
    for d in dims:
        count *= d
        nonzero *= max(d, 1)
    if nonzero > 2**60:
        raise bad(f"dims {list(dims)} are too large")
    if offset % alignment:
        raise bad(f"data offset {offset} is not a multiple of the alignment {alignment}")
    begin = data_start + offset
    if begin > size:
        raise bad(f"data offset {offset} is past the end of the file")
    nbytes = None
    if type_id in GGML_TYPES:
        type_name, block, type_size = GGML_TYPES[type_id]
        if dims[0] % block:
            raise bad(f"{type_name} rows of {dims[0]} values are not whole {block}-value blocks")
        nbytes = count // block * type_size
        if begin + nbytes > size:
            raise bad(f"{type_name} {list(dims)} needs {nbytes} bytes at offset {begin}, past the end of the "
                      f"{size}-byte file")
    return GGUFTensorInfo(name, type_id, dims, begin, nbytes)
