"""Flax / JAX checkpoints in ``flax.serialization``'s msgpack format, read with ``msgpack`` alone (``flax`` extra).

Format (``flax.serialization.msgpack_serialize``): the state is a msgpack map of nested maps (string keys;
lists are maps with keys ``"0"``, ``"1"``, ...); each array is an ExtType of code 1 whose data is the msgpack
array ``[shape, dtype name, raw bytes]`` (C order, little-endian); code 3 is a numpy scalar (not a layer).
Arrays above flax's chunk size are stored as a map ``{"__msgpack_chunked_array__": true, "shape": [...],
"chunks": {"0": <1-D ndarray>, ...}}`` whose chunks concatenate, in key order, to the flattened array.

The file is walked once with a small structural msgpack parser that reads only headers and skips payloads by
seeking, so listing costs no more memory than the tree of names; ``load`` then seeks to one array and decodes
it. Every length and count is checked against the bytes left in the file before anything is read.

Names, layer types and orientations: ``flax_names`` (shared with the Orbax reader).
dtypes: float16/32/64 as stored, bfloat16 widened to float32 exactly. Errors: ``hts.ModelFileError`` naming the
file and the tensor.
"""

from __future__ import annotations

import os
import struct
from array import array
from collections.abc import Sequence

import numpy as np

from ..errors import ModelFileError
from . import limits
from .base import WeightTensor
from .flax_names import classify, strip_wrappers
from .lazy import LazyTensors

__all__ = ["from_flax"]

_MAX_DEPTH = 64
_CHUNKED = "__msgpack_chunked_array__"


class _Reader:
    """Headers of msgpack values at file offsets; payloads are skipped, never read."""

    def __init__(self, f, path: str, size: int) -> None:
        self.f, self.path, self.size = f, path, size

    def take(self, n: int) -> bytes:
        if n < 0 or self.f.tell() + n > self.size:
            raise ModelFileError(self.path, f"truncated at byte {self.f.tell()}: {n} more bytes expected")
        return self.f.read(n)

    def skip(self, n: int) -> None:
        if n < 0 or self.f.tell() + n > self.size:
            raise ModelFileError(self.path, f"truncated at byte {self.f.tell()}: a {n}-byte value runs past the end")
        self.f.seek(n, 1)

    def count(self, n: int) -> int:
        if n > self.size - self.f.tell():  # every element takes at least one byte
            raise ModelFileError(self.path, f"a count of {n} elements at byte {self.f.tell()} exceeds the file")
        return n

    def header(self):
        """(kind, n): kind in map/array/str/bin/ext/scalar; for ext, n = (code, length)."""
        b = self.take(1)[0]
        u = lambda fmt, k: struct.unpack(fmt, self.take(k))[0]
        if b <= 0x7F or b >= 0xE0 or b in (0xC0, 0xC2, 0xC3):
            return "scalar", 0
        if 0x80 <= b <= 0x8F:
            return "map", self.count(b & 0x0F)
        if 0x90 <= b <= 0x9F:
            return "array", self.count(b & 0x0F)
        if 0xA0 <= b <= 0xBF:
            return "str", b & 0x1F
        table = {0xC4: ("bin", ">B", 1), 0xC5: ("bin", ">H", 2), 0xC6: ("bin", ">I", 4),
                 0xD9: ("str", ">B", 1), 0xDA: ("str", ">H", 2), 0xDB: ("str", ">I", 4),
                 0xDC: ("array", ">H", 2), 0xDD: ("array", ">I", 4), 0xDE: ("map", ">H", 2), 0xDF: ("map", ">I", 4)}
        if b in table:
            kind, fmt, k = table[b]
            n = u(fmt, k)
            return kind, (self.count(n) if kind in ("array", "map") else n)
        sizes = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8, 0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8, 0xCA: 4, 0xCB: 8}
        if b in sizes:
            self.skip(sizes[b])
            return "scalar", 0
        if 0xD4 <= b <= 0xD8:
            code = struct.unpack("b", self.take(1))[0]
            return "ext", (code, 1 << (b - 0xD4))
        if b in (0xC7, 0xC8, 0xC9):
            n = u({0xC7: ">B", 0xC8: ">H", 0xC9: ">I"}[b], {0xC7: 1, 0xC8: 2, 0xC9: 4}[b])
            code = struct.unpack("b", self.take(1))[0]
            return "ext", (code, n)
        raise ModelFileError(self.path, f"byte 0x{b:02x} at offset {self.f.tell() - 1} is not msgpack")

    def string(self) -> str:
        kind, n = self.header()
        if kind not in ("str", "bin"):
            raise ModelFileError(self.path, f"a map key at byte {self.f.tell()} is a {kind}, not a string")
        try:
            return self.take(n).decode("utf-8")
        except UnicodeDecodeError:
            raise ModelFileError(self.path, f"a map key at byte {self.f.tell()} is not UTF-8") from None

    def skip_value(self, depth: int = 0) -> None:
        if depth > _MAX_DEPTH:
            raise ModelFileError(self.path, "nested deeper than 64 levels")
        kind, n = self.header()
        if kind in ("str", "bin"):
            self.skip(n)
        elif kind == "ext":
            self.skip(n[1])
        elif kind == "array":
            for _ in range(n):
                self.skip_value(depth + 1)
        elif kind == "map":
            for _ in range(2 * n):
                self.skip_value(depth + 1)

    def ndarray_header(self, length: int, key: str) -> tuple:
        """Shape, dtype name and data offset of an ndarray ext payload of ``length`` bytes at the position."""
        end = self.f.tell() + length
        kind, n = self.header()
        if kind != "array" or n != 3:
            raise ModelFileError(self.path, "ndarray ext is not [shape, dtype, data]", tensor=key)
        kind, nd = self.header()
        if kind != "array" or nd > 32:
            raise ModelFileError(self.path, "ndarray shape is not a short list", tensor=key)
        shape = []
        for _ in range(nd):
            b = self.take(1)[0]
            if b <= 0x7F:
                shape.append(b)
            elif b in (0xCC, 0xCD, 0xCE, 0xCF):
                shape.append(struct.unpack({0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q"}[b],
                                           self.take({0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}[b]))[0])
            else:
                raise ModelFileError(self.path, "ndarray shape holds a non-integer or negative value", tensor=key)
        dtype = self.string()
        kind, nbytes = self.header()
        if kind != "bin" or self.f.tell() + nbytes != end:
            raise ModelFileError(self.path, "ndarray data is not a byte string filling the ext", tensor=key)
        return tuple(shape), dtype, self.f.tell(), nbytes


def _np_dtype(name: str):
    if name == "bfloat16":
        return np.dtype("<u2")
    try:
        dt = np.dtype(name)
    except TypeError:
        return None
    return dt.newbyteorder("<") if dt.kind in "fiub" else None


class _Leaves:
    """The arrays met while walking the file, one row each, as columns: key, dtype (a code), shape (flat dims),
    data offset and size; the few chunked arrays keep their list of parts aside."""

    __slots__ = ("keys", "dtypes", "dtype_codes", "codes", "dims", "dim_start", "offset", "nbytes", "chunked")

    def __init__(self) -> None:
        self.keys: list = []
        self.dtypes: list = []
        self.dtype_codes: dict = {}
        self.codes = array("i")
        self.dims, self.dim_start = array("Q"), array("q", [0])  # Q: msgpack sizes are unsigned 64-bit
        self.offset, self.nbytes = array("q"), array("q")
        self.chunked: dict = {}  # row -> [(offset, nbytes), ...]

    def __len__(self) -> int:
        return len(self.keys)

    def append(self, leaf: tuple) -> None:
        key, shape, dtype, parts = leaf
        row = len(self.keys)
        code = self.dtype_codes.get(dtype)
        if code is None:
            code = self.dtype_codes[dtype] = len(self.dtypes)
            self.dtypes.append(dtype)
        self.keys.append(key)
        self.codes.append(code)
        self.dims.extend(shape)
        self.dim_start.append(len(self.dims))
        if len(parts) == 1:
            self.offset.append(parts[0][0])
            self.nbytes.append(parts[0][1])
        else:
            self.offset.append(-1)
            self.nbytes.append(sum(nb for _, nb in parts))
            self.chunked[row] = parts

    def ndim(self, row: int) -> int:
        return self.dim_start[row + 1] - self.dim_start[row]

    def __getitem__(self, row: int) -> tuple:
        """(key, shape, dtype, parts) of one row."""
        parts = self.chunked[row] if row in self.chunked else [(self.offset[row], self.nbytes[row])]
        return (self.keys[row], tuple(self.dims[self.dim_start[row]:self.dim_start[row + 1]]),
                self.dtypes[self.codes[row]], parts)


class _FlaxTensors(LazyTensors):
    """The records of one checkpoint, made from its ``_Leaves`` when used (``rows``: the arrays of 2+ dims)."""

    __slots__ = ("_path", "_leaves", "_rows")

    def __init__(self, path: str, leaves: _Leaves, rows: np.ndarray) -> None:
        self._path, self._leaves, self._rows = path, leaves, rows

    def __len__(self) -> int:
        return len(self._rows)

    def _make(self, i: int) -> WeightTensor:
        return _record(i + 1, self._path, *self._leaves[int(self._rows[i])])


def from_flax(path: str | os.PathLike) -> Sequence[WeightTensor]:
    """The weight tensors of a flax msgpack checkpoint (see the module docstring): a sequence whose records are
    made when used; every array's byte count is checked here."""
    path = os.fspath(path)
    leaves = _Leaves()
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            r = _Reader(f, path, size)
            kind, n = r.header()
            if kind != "map":
                raise ModelFileError(path, "not a flax msgpack checkpoint: the top level is not a map")
            _walk(r, n, [], leaves, 0)
            if f.tell() != size:
                raise ModelFileError(path, f"{size - f.tell()} bytes of trailing data after the checkpoint")
    except OSError as err:
        raise ModelFileError(path, f"cannot read: {err.strerror or err}") from None
    rows = np.fromiter((r for r in range(len(leaves)) if leaves.ndim(r) >= 2), np.int32)
    if not len(rows):
        raise ModelFileError(path, "the checkpoint holds no arrays of two or more dimensions")
    for r in rows:
        _check_size(path, *leaves[int(r)])
    return _FlaxTensors(path, leaves, rows)


def _check_size(path: str, key: str, shape: tuple, dtype: str, parts: list) -> None:
    """ModelFileError when an array's data is not its shape's bytes."""
    dt = _np_dtype(dtype)
    count = 1
    for d in shape:
        count *= d
    total = sum(nb for _, nb in parts)
    if dt is not None and total != count * dt.itemsize:
        raise ModelFileError(path, f"{total} bytes of data for shape {shape} of {dtype}", tensor=key)


def _walk(r: _Reader, n: int, prefix: list, leaves: list, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise ModelFileError(r.path, "nested deeper than 64 levels")
    for _ in range(n):
        name = r.string()
        key = ".".join(prefix + [name])
        kind, m = r.header()
        if kind == "map":
            if name != _CHUNKED and m and _peek_chunked(r):
                leaves.append(_chunked(r, m, prefix + [name], key))
            else:
                _walk(r, m, prefix + [name], leaves, depth + 1)
        elif kind == "ext" and m[0] == 1:
            shape, dtype, offset, nbytes = r.ndarray_header(m[1], key)
            r.skip(nbytes)
            if len(leaves) >= limits.MAX_TENSORS:
                raise ModelFileError(r.path, f"more than the {limits.MAX_TENSORS} arrays a file may hold")
            leaves.append((strip_wrappers(key), shape, dtype, [(offset, nbytes)]))
        elif kind in ("str", "bin"):
            r.skip(m)
        elif kind == "ext":
            r.skip(m[1])
        elif kind == "array":
            for _ in range(m):
                r.skip_value(depth + 1)


def _peek_chunked(r: _Reader) -> bool:
    pos = r.f.tell()
    try:
        return r.string() == _CHUNKED
    except ModelFileError:
        return False
    finally:
        r.f.seek(pos)


def _chunked(r: _Reader, m: int, parts_path: list, key: str) -> tuple:
    shape, dtype, parts = None, None, []
    for _ in range(m):
        field = r.string()
        kind, n = r.header()
        if field == "shape" and kind == "array":
            shape = []
            for _ in range(n):
                b = r.take(1)[0]
                if b > 0x7F and b not in (0xCC, 0xCD, 0xCE, 0xCF):
                    raise ModelFileError(r.path, "chunked array shape is not a list of integers", tensor=key)
                if b <= 0x7F:
                    shape.append(b)
                else:
                    k = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}[b]
                    shape.append(int.from_bytes(r.take(k), "big"))
        elif field == "chunks" and kind == "map":
            chunks = []
            for _ in range(n):
                index = r.string()
                ckind, cn = r.header()
                if ckind != "ext" or cn[0] != 1 or not index.isdigit():
                    raise ModelFileError(r.path, f"chunk {index!r} is not an ndarray", tensor=key)
                _, cdtype, offset, nbytes = r.ndarray_header(cn[1], key)
                r.skip(nbytes)
                dtype = dtype or cdtype
                if cdtype != dtype:
                    raise ModelFileError(r.path, "chunks of different dtypes", tensor=key)
                chunks.append((int(index), offset, nbytes))
            parts = [(o, nb) for _, o, nb in sorted(chunks)]
        else:
            _skip_body(r, kind, n)
    if shape is None or dtype is None:
        raise ModelFileError(r.path, "chunked array without shape or chunks", tensor=key)
    return strip_wrappers(key), tuple(shape), dtype, parts


def _skip_body(r: _Reader, kind: str, n) -> None:
    if kind in ("str", "bin"):
        r.skip(n)
    elif kind == "ext":
        r.skip(n[1])
    elif kind == "array":
        for _ in range(n):
            r.skip_value(1)
    elif kind == "map":
        for _ in range(2 * n):
            r.skip_value(1)


def _record(layer_id: int, path: str, key: str, shape: tuple, dtype: str, parts: list) -> WeightTensor:
    dt = _np_dtype(dtype)
    is_float = dt is not None and (dt.kind == "f" or dtype == "bfloat16")
    info = classify(key, shape, dtype, is_float)
    skip = f"dtype {dtype} is not supported" if dt is None else info.skip_reason
    stored_shape = shape
    _check_size(path, key, stored_shape, dtype, parts)
    count = 1
    for d in stored_shape:
        count *= d

    def load() -> np.ndarray:
        if skip:
            raise ModelFileError(path, skip, tensor=key)
        buf = np.empty(count, dtype=dt.newbyteorder("="))
        view = memoryview(buf).cast("B")
        pos = 0
        with open(path, "rb") as f:
            for offset, nbytes in parts:
                f.seek(offset)
                got = f.readinto(view[pos:pos + nbytes])
                if got != nbytes:
                    raise ModelFileError(path, f"truncated: expected {nbytes} bytes of data, got {got}", tensor=key)
                pos += nbytes
        w = buf.reshape(stored_shape)
        if dtype == "bfloat16":
            w = (w.astype(np.uint32) << 16).view(np.float32)
        return info.transform(w) if info.transform else w

    return WeightTensor(layer_id=layer_id, name=info.name, longname=info.longname, key=key,
                        layer_type=info.layer_type, shape=info.shape, dtype=dtype, orientation=info.orientation,
                        load=load, skip_reason=skip, source="flax")
