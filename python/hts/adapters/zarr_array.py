"""zarr arrays as tensorstore writes them for Orbax: v2 ``.zarray`` and v3 ``zarr.json`` metadata, chunk keys,
codecs, and reading a whole array chunk by chunk into one preallocated buffer.

Supported (everything Orbax writes by default, and the common lossless alternatives):
- v2: dtypes ``<f2 <f4 <f8`` (and big-endian), ``bfloat16``, integers/bool (listed, not analysed); compressor
  ``null``, ``zstd``, ``zlib``, ``gzip``; ``filters`` null; order ``C`` or ``F``; ``dimension_separator``
  ``.`` or ``/``.
- v3: ``regular`` chunk grid; ``default`` (``c/0/0``) or ``v2`` (``0.0``) chunk keys; codecs ``transpose``,
  ``bytes`` (endian), ``zstd``, ``gzip``, ``crc32c`` (verified) and ``sharding_indexed`` (Orbax's default for
  zarr3: inner chunks located through the shard index, which is read first and CRC-checked, so a tensor is
  read one inner chunk at a time).
Anything else (blosc, filters, bitround, variable chunk grids, ...) is refused with a reason naming it.
Missing chunks (and inner chunks whose index entry is empty) hold the array's ``fill_value`` (``null``: 0).

A source is ``(size(key) -> int | None, read(key, start, length) -> bytes)``: an OCDBT database or a folder.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import ModelFileError
from . import limits
from .compression import decompress
from .crc32c import crc32c

__all__ = ["ZarrArray", "parse_metadata", "read_array"]

_MAX_DIMS = 32
_MAX_ELEMENTS = 1 << 40
_MAX_CHUNKS = 1 << 20
#: A chunk (or a shard's inner chunk) may decode to more bytes than the array only by this much: zarr lets a
#: chunk reach past the array's edge, a chunk far larger than its array is a false chunk shape.
_CHUNK_SLACK = 1 << 20
_V3_DTYPES = {"bool": "|b1", "int8": "|i1", "int16": "<i2", "int32": "<i4", "int64": "<i8", "uint8": "|u1",
              "uint16": "<u2", "uint32": "<u4", "uint64": "<u8", "float16": "<f2", "float32": "<f4",
              "float64": "<f8", "bfloat16": "<u2"}
_COMPRESSORS = ("zstd", "zlib", "gzip")


@dataclass(frozen=True)
class ZarrArray:
    """One array's metadata. ``dtype``: the stored dtype's name (``"bfloat16"``, ``"float32"``...);
    ``storage``: the numpy dtype of the stored bytes (bfloat16 as ``<u2``); ``steps``: codecs in encode order
    after the array -> bytes step, as (name, configuration) pairs; ``shard``: the inner array of a
    ``sharding_indexed`` codec, or None."""

    zarr_format: int
    shape: tuple
    chunks: tuple
    dtype: str
    storage: np.dtype
    fill_value: object
    order: tuple  # transpose permutation applied before encoding (C order: identity)
    steps: tuple = ()
    shard: "ZarrArray | None" = None
    index_crc: bool = False
    index_at_end: bool = True
    key_prefix: str = ""
    separator: str = "."
    extras: dict = field(default_factory=dict)

    @property
    def codec(self) -> str:
        """For ``hts describe``: chunk shape and codecs, e.g. ``"zstd, chunks 64x64"``."""
        inner = self.shard
        names = [n for n, _ in self.steps] or ["raw"]
        text = f"{', '.join(names)}, chunks {'x'.join(map(str, self.chunks)) or 'scalar'}"
        if inner is not None:
            text = (f"sharded ({', '.join(n for n, _ in inner.steps) or 'raw'}), shards "
                    f"{'x'.join(map(str, self.chunks))}, chunks {'x'.join(map(str, inner.chunks))}")
        return f"zarr{self.zarr_format} " + text

    def chunk_key(self, index: tuple) -> str:
        if not index:
            return self.key_prefix.rstrip(self.separator) or "0"
        return self.key_prefix + self.separator.join(map(str, index))

    def chunk_index(self, key: str) -> tuple | None:
        """The grid index a chunk key names; None when it names no chunk of this array."""
        if not self.shape:
            return () if key == self.chunk_key(()) else None
        if not key.startswith(self.key_prefix):
            return None
        parts = key[len(self.key_prefix):].split(self.separator)
        if len(parts) != len(self.shape) or not all(p.isdigit() and p.isascii() and len(p) < 20 for p in parts):
            return None
        index = tuple(int(p) for p in parts)
        if any(i >= -(-s // c) for i, s, c in zip(index, self.shape, self.chunks)):
            return None
        return index if self.chunk_key(index) == key else None

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.storage.itemsize


def _fail(where: str, message: str, tensor: str | None) -> ModelFileError:
    return ModelFileError(where, message, tensor=tensor)


def _ints(value, what: str, where: str, tensor: str | None, *, positive: bool) -> tuple:
    if not isinstance(value, list) or len(value) > _MAX_DIMS or not all(
            isinstance(v, int) and not isinstance(v, bool) and (v > 0 if positive else v >= 0) for v in value):
        raise _fail(where, f"{what} {str(value)[:80]} is not a list of at most {_MAX_DIMS} "
                           f"{'positive' if positive else 'non-negative'} integers", tensor)
    return tuple(value)


def _fill(value, storage: np.dtype, where: str, tensor: str | None):
    if value is None:
        return 0
    if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity") and storage.kind == "f":
        return float(value.replace("Infinity", "inf"))
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(where, f"fill_value {str(value)[:40]!r} is not a number", tensor)
    return value


def parse_metadata(raw: bytes, where: str, tensor: str | None = None) -> ZarrArray:
    """A ``.zarray`` (v2) or ``zarr.json`` (v3) document; ModelFileError naming ``where`` and ``tensor``."""
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise _fail(where, f"zarr metadata is not valid JSON: {str(err)[:120]}", tensor) from None
    if not isinstance(meta, dict):
        raise _fail(where, "zarr metadata is not a JSON object", tensor)
    fmt = meta.get("zarr_format")
    if fmt == 2:
        return _v2(meta, where, tensor)
    if fmt == 3:
        if meta.get("node_type") != "array":
            raise _fail(where, f"zarr v3 node_type {str(meta.get('node_type'))[:40]!r} is not an array", tensor)
        return _v3(meta, where, tensor)
    raise _fail(where, f"zarr_format {repr(fmt)[:20]} is not 2 or 3", tensor)


def _check_shape(shape: tuple, chunks: tuple, where: str, tensor: str | None) -> None:
    if len(chunks) != len(shape):
        raise _fail(where, f"chunk shape {chunks} does not match the array's rank {len(shape)}", tensor)
    if math.prod(max(d, 1) for d in shape) > _MAX_ELEMENTS:  # empty arrays too: numpy refuses such shapes
        raise _fail(where, f"shape {shape} claims more than 2^40 elements (refused)", tensor)
    if math.prod(chunks) > _MAX_ELEMENTS // 16:
        raise _fail(where, f"chunk shape {chunks} is too large (refused)", tensor)
    if math.prod(-(-s // c) for s, c in zip(shape, chunks)) > _MAX_CHUNKS:
        raise _fail(where, f"shape {shape} in chunks {chunks} makes more than 2^20 chunks (refused)", tensor)


def _v2(meta: dict, where: str, tensor: str | None) -> ZarrArray:
    shape = _ints(meta.get("shape"), "shape", where, tensor, positive=False)
    chunks = _ints(meta.get("chunks"), "chunks", where, tensor, positive=True)
    _check_shape(shape, chunks, where, tensor)
    name = meta.get("dtype")
    if name == "bfloat16":
        storage, dtype = np.dtype("<u2"), "bfloat16"
    else:
        try:
            storage = np.dtype(name) if isinstance(name, str) and len(name) < 8 else None
        except TypeError:
            storage = None
        if storage is None or storage.kind not in "fiub" or storage.fields:
            raise _fail(where, f"zarr dtype {str(name)[:40]!r} is not supported", tensor)
        dtype = storage.name
    if meta.get("filters"):
        ids = [f.get("id") if isinstance(f, dict) else f for f in meta["filters"]]
        raise _fail(where, f"zarr filters {str(ids)[:80]} are not supported", tensor)
    comp = meta.get("compressor")
    steps = ()
    if comp is not None:
        cid = comp.get("id") if isinstance(comp, dict) else comp
        if cid not in _COMPRESSORS:
            raise _fail(where, f"zarr compressor {str(cid)[:40]!r} is not supported (zstd, zlib, gzip are)",
                        tensor)
        steps = ((cid, {}),)
    order = meta.get("order", "C")
    if order not in ("C", "F"):
        raise _fail(where, f"zarr order {str(order)[:10]!r} is not C or F", tensor)
    sep = meta.get("dimension_separator", ".")
    if sep not in (".", "/"):
        raise _fail(where, f"dimension_separator {str(sep)[:10]!r} is not '.' or '/'", tensor)
    perm = tuple(range(len(shape)))[::-1] if order == "F" else tuple(range(len(shape)))
    return ZarrArray(2, shape, chunks, dtype, storage, _fill(meta.get("fill_value"), storage, where, tensor),
                     perm, steps, separator=sep)


def _v3(meta: dict, where: str, tensor: str | None) -> ZarrArray:
    shape = _ints(meta.get("shape"), "shape", where, tensor, positive=False)
    grid = meta.get("chunk_grid")
    if not isinstance(grid, dict) or grid.get("name") != "regular":
        raise _fail(where, "only zarr's 'regular' chunk grid is supported", tensor)
    chunks = _ints((grid.get("configuration") or {}).get("chunk_shape"), "chunk_shape", where, tensor,
                   positive=True)
    _check_shape(shape, chunks, where, tensor)
    dtype = meta.get("data_type")
    if not isinstance(dtype, str) or dtype not in _V3_DTYPES:
        raise _fail(where, f"zarr data_type {str(dtype)[:40]!r} is not supported", tensor)
    storage = np.dtype(_V3_DTYPES[dtype])
    enc = meta.get("chunk_key_encoding") or {"name": "default"}
    ename = enc.get("name") if isinstance(enc, dict) else None
    sep = (enc.get("configuration") or {}).get("separator", "/" if ename == "default" else ".") \
        if isinstance(enc, dict) else None
    if ename not in ("default", "v2") or sep not in (".", "/"):
        raise _fail(where, f"chunk_key_encoding {str(enc)[:80]} is not supported", tensor)
    arr = _codecs(meta.get("codecs"), shape, chunks, dtype, storage, where, tensor)
    return ZarrArray(3, shape, chunks, dtype, storage, _fill(meta.get("fill_value"), storage, where, tensor),
                     arr.order, arr.steps, arr.shard, arr.index_crc, arr.index_at_end,
                     key_prefix=("c" + sep) if ename == "default" else "", separator=sep)


def _codecs(codecs, shape: tuple, chunks: tuple, dtype: str, storage: np.dtype, where: str,
            tensor: str | None) -> ZarrArray:
    """The codec chain of a v3 array (or of a shard's inner chunks), as the fields of a ZarrArray."""
    if not isinstance(codecs, list) or not codecs or len(codecs) > 8:
        raise _fail(where, "zarr v3 codecs is not a non-empty list", tensor)
    order = tuple(range(len(chunks)))
    steps, shard, stage, storage_out = [], None, "array", storage
    index_crc, index_at_end = False, True
    for c in codecs:
        name = c.get("name") if isinstance(c, dict) else None
        conf = (c.get("configuration") or {}) if isinstance(c, dict) else {}
        if not isinstance(conf, dict):
            raise _fail(where, f"codec {str(name)[:40]!r} has a configuration that is not an object", tensor)
        if name == "transpose" and stage == "array":
            perm = conf.get("order")
            if not isinstance(perm, list) or sorted(perm) != list(range(len(chunks))):
                raise _fail(where, f"transpose order {str(perm)[:40]} is not a permutation", tensor)
            order = tuple(order[p] for p in perm)
        elif name == "bytes" and stage == "array":
            endian = conf.get("endian", "little")
            if endian not in ("little", "big"):
                raise _fail(where, f"bytes codec endian {str(endian)[:20]!r} is not little or big", tensor)
            storage_out = storage.newbyteorder("<" if endian == "little" else ">") if storage.itemsize > 1 \
                else storage
            stage = "bytes"
        elif name == "sharding_indexed" and stage == "array":
            inner = _ints(conf.get("chunk_shape"), "inner chunk_shape", where, tensor, positive=True)
            if len(inner) != len(chunks) or any(o % i for o, i in zip(chunks, inner)) or order != tuple(
                    range(len(chunks))):
                raise _fail(where, f"shard {chunks} is not a whole number of inner chunks {inner}", tensor)
            shard = _codecs(conf.get("codecs"), chunks, inner, dtype, storage, where, tensor)
            index = conf.get("index_codecs") or [{"name": "bytes"}, {"name": "crc32c"}]
            names = [i.get("name") if isinstance(i, dict) else None for i in index]
            if names not in (["bytes"], ["bytes", "crc32c"]) or (
                    (index[0].get("configuration") or {}).get("endian", "little") != "little"):
                raise _fail(where, f"shard index codecs {str(names)[:60]} are not supported", tensor)
            index_crc = names[-1] == "crc32c"
            loc = conf.get("index_location", "end")
            if loc not in ("start", "end"):
                raise _fail(where, f"index_location {str(loc)[:20]!r} is not start or end", tensor)
            index_at_end = loc == "end"
            stage = "sharded"
        elif name in ("zstd", "gzip", "crc32c") and stage == "bytes":
            steps.append((name, {}))
        else:
            raise _fail(where, f"zarr codec {str(name)[:40]!r} is not supported here (transpose, bytes, zstd, "
                               "gzip, crc32c, sharding_indexed are)", tensor)
    if stage == "array":
        raise _fail(where, "zarr codecs have no array -> bytes codec ('bytes' or 'sharding_indexed')", tensor)
    return ZarrArray(3, shape, chunks, dtype, storage_out, 0, order, tuple(steps), shard, index_crc,
                     index_at_end)


def decode_chunk(arr: ZarrArray, data: bytes, where: str, tensor: str | None) -> np.ndarray:
    """One non-sharded chunk's bytes -> an array of the chunk shape (storage dtype, native byte order)."""
    expected = math.prod(arr.chunks) * arr.storage.itemsize
    sizes = [expected]  # size of the input of each step, when known
    for name, _ in arr.steps:
        sizes.append(sizes[-1] + 4 if name == "crc32c" and sizes[-1] is not None else None)
    for (name, _), size in zip(reversed(arr.steps), reversed(sizes[:-1])):
        if name == "crc32c":
            if len(data) < 4 or crc32c(memoryview(data)[:-4]) != struct.unpack("<I", data[-4:])[0]:
                raise _fail(where, "chunk fails its CRC-32C check (corrupt)", tensor)
            data = data[:-4]
        else:
            # a compressor's input of unknown size (two compressors chained) is another compressor's output:
            # at most the decoded chunk + zstd's/deflate's worst-case expansion (< 1/128 + 64 KiB)
            limit = size if size is not None else expected + (expected >> 7) + (1 << 16)
            data = decompress(name, data, limit, where, tensor=tensor, exact=size is not None)
    if len(data) != expected:
        raise _fail(where, f"chunk holds {len(data)} bytes, {expected} expected for chunk shape {arr.chunks} of "
                           f"{arr.dtype}", tensor)
    stored = tuple(arr.chunks[p] for p in arr.order)
    a = np.frombuffer(data, dtype=arr.storage).reshape(stored)
    if arr.order != tuple(range(len(arr.chunks))):
        a = a.transpose(np.argsort(arr.order))
    return a


def read_array(arr: ZarrArray, present: dict, size: Callable[[str], int | None],
               read: Callable[[str, int, int], bytes], where: str, tensor: str | None) -> np.ndarray:
    """The whole array (storage dtype, native byte order) from the chunks ``present`` ({grid index: key}, as
    ``chunk_index`` parses the stored keys); the others hold the fill value. Work is per stored chunk, never per
    grid cell.

    What is allocated is what the metadata declares, checked first: the array (at most
    ``limits.MAX_TENSOR_BYTES``) and one decoded chunk (at most the array + 1 MiB); every decompression stops
    at the chunk's declared size, so no stream, however it inflates, makes the reader allocate more. Peak
    memory: the array + one decoded chunk + its stored bytes; when one chunk is the whole array (Orbax's
    default chunking), the decoded chunk is returned as the array (no second copy)."""
    if arr.nbytes > limits.MAX_TENSOR_BYTES:
        raise _fail(where, f"shape {arr.shape} of {arr.dtype} declares {arr.nbytes} bytes, more than the "
                           f"{limits.MAX_TENSOR_BYTES} a tensor may (hts.adapters.limits.MAX_TENSOR_BYTES; refused "
                           "before allocation)", tensor)
    decoded = arr.shard if arr.shard is not None else arr
    chunk_bytes = math.prod(decoded.chunks) * arr.storage.itemsize
    if chunk_bytes > arr.nbytes + _CHUNK_SLACK:
        raise _fail(where, f"chunk shape {decoded.chunks} ({chunk_bytes} bytes) is larger than shape {arr.shape} "
                           f"of {arr.dtype} ({arr.nbytes} bytes) by more than 1 MiB (a false chunk shape; refused)",
                    tensor)
    sizes = {index: size(key) or 0 for index, key in present.items()}
    whole = _whole_chunk(arr, size, read, where, tensor)
    if whole is not None:
        return whole
    try:
        out = np.empty(arr.shape, dtype=arr.storage.newbyteorder("="))
    except (MemoryError, ValueError):
        raise _fail(where, f"not enough memory for shape {arr.shape} of {arr.dtype}", tensor) from None
    out[...] = _fill_bits(arr, where, tensor)
    for index in sorted(present):
        key, n = present[index], sizes[index]
        if arr.shard is None:
            _place(out, arr.chunks, index, decode_chunk(arr, read(key, 0, n), where, tensor))
        else:
            _read_shard(arr, out, index, key, n, read, where, tensor)
    return out


def _whole_chunk(arr: ZarrArray, size, read, where: str, tensor: str | None) -> np.ndarray | None:
    """The array decoded in place when its only chunk is exactly the array, stored natively in C order."""
    if (arr.shard is not None or arr.chunks != arr.shape or not arr.shape or not arr.storage.isnative
            or arr.order != tuple(range(len(arr.shape)))):
        return None
    n = size(arr.chunk_key((0,) * len(arr.shape)))
    if n is None:
        return None
    a = decode_chunk(arr, read(arr.chunk_key((0,) * len(arr.shape)), 0, n), where, tensor)
    return a if a.flags.writeable else a.copy()


def _fill_bits(arr: ZarrArray, where: str, tensor: str | None):
    """The fill value as a scalar of the storage dtype (bfloat16: its 16-bit pattern)."""
    value = arr.fill_value
    try:
        if arr.dtype == "bfloat16":
            return np.uint16(np.array(value, dtype=np.float32).view(np.uint32) >> 16)
        with np.errstate(all="raise"):
            out = np.array(value).astype(arr.storage.newbyteorder("="))
        if out != value and not (out != out and value != value):
            raise ValueError(value)
        return out
    except (ValueError, OverflowError, TypeError, FloatingPointError):
        raise _fail(where, f"fill_value {str(value)[:40]} does not fit {arr.dtype}", tensor) from None


def _grid(shape: tuple, chunks: tuple):
    """Chunk indices in C order, lazily (np.ndindex would materialise every axis's range)."""
    counts = [-(-s // c) for s, c in zip(shape, chunks)]
    if any(n == 0 for n in counts):
        return
    index = [0] * len(counts)
    while True:
        yield tuple(index)
        for d in reversed(range(len(counts))):
            index[d] += 1
            if index[d] < counts[d]:
                break
            index[d] = 0
        else:
            return


def _place(out: np.ndarray, chunks: tuple, index: tuple, chunk: np.ndarray, origin: tuple = ()) -> None:
    start = [i * c + (origin[d] if origin else 0) for d, (i, c) in enumerate(zip(index, chunks))]
    region = tuple(slice(s, min(s + c, n)) for s, c, n in zip(start, chunks, out.shape))
    out[region] = chunk[tuple(slice(0, r.stop - r.start) for r in region)]


def _read_shard(arr: ZarrArray, out: np.ndarray, index: tuple, key: str, n: int, read, where: str,
                tensor: str | None) -> None:
    inner = arr.shard
    count = math.prod(o // i for o, i in zip(arr.chunks, inner.chunks))
    isize = 16 * count + (4 if arr.index_crc else 0)
    if n < isize:
        raise _fail(where, f"shard {key!r} of {n} bytes is shorter than its {isize}-byte index", tensor)
    raw = read(key, n - isize if arr.index_at_end else 0, isize)
    if arr.index_crc:
        if crc32c(memoryview(raw)[:-4]) != struct.unpack("<I", raw[-4:])[0]:
            raise _fail(where, f"shard {key!r}: index fails its CRC-32C check (corrupt)", tensor)
        raw = raw[:-4]
    table = np.frombuffer(raw, dtype="<u8").reshape(count, 2)
    lo, hi = (0, n - isize) if arr.index_at_end else (isize, n)
    origin = tuple(i * c for i, c in zip(index, arr.chunks))
    for j, sub in enumerate(_grid(arr.chunks, inner.chunks)):
        offset, length = int(table[j, 0]), int(table[j, 1])
        if offset == length == 2**64 - 1:
            continue  # empty inner chunk: fill value
        if offset < lo or length > hi - offset:
            raise _fail(where, f"shard {key!r}: inner chunk {sub} at bytes {offset}..{offset + length} lies "
                               f"outside the shard's data ({lo}..{hi})", tensor)
        if any(o + s * c >= d for o, s, c, d in zip(origin, sub, inner.chunks, out.shape)):
            continue  # wholly in the padding past the array's edge
        _place(out, inner.chunks, sub, decode_chunk(inner, read(key, offset, length), where, tensor), origin)
