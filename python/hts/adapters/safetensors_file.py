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
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ..errors import ModelFileError
from .limits import MAX_TENSORS as _MAX_TENSORS
from .dtypes import CHUNK_ELEMENTS, bf16_to_float32, float8_to_float32
from .sorting import lean_argsort, natural_key

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


class TensorTable(Mapping):
    """The checked tensors of one header, name -> ``TensorInfo``, iterated in natural name order.

    Stored column-wise: the names in one list in header order (a tensor's *row* is its place there), flat
    ``array`` columns of dtype codes, offsets and shapes; a ``TensorInfo`` is made when one is looked up, and the
    name -> row index only when a name is (readers that go by row never build it). A listed tensor costs its name
    + ~50 bytes whatever the header holds.
    """

    __slots__ = ("_names", "_index", "_dtypes", "_codes", "_begin", "_end", "_dims", "_dim_start", "_data_start",
                 "_order")

    def __init__(self, names: list, columns: "_Columns", data_start: int) -> None:
        self._names = names
        self._index: dict | None = None
        self._dtypes = columns.dtypes
        self._codes, self._begin, self._end = columns.codes, columns.begin, columns.end
        self._dims, self._dim_start = columns.dims, columns.dim_start
        self._data_start = data_start
        self._order: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self._names)

    def row(self, name: str) -> int:
        """The tensor's row (KeyError when the header has no such tensor)."""
        if self._index is None:
            self._index = {n: r for r, n in enumerate(self._names)}
        return self._index[name]

    def __contains__(self, name) -> bool:
        try:
            self.row(name)
        except (KeyError, TypeError):
            return False
        return True

    def __getitem__(self, name: str) -> TensorInfo:
        return self.at(self.row(name))

    def at(self, row: int) -> TensorInfo:
        """The tensor of one row."""
        shape = tuple(self._dims[self._dim_start[row]:self._dim_start[row + 1]])
        return TensorInfo(self._names[row], self._dtypes[self._codes[row]], shape,
                          self._data_start + self._begin[row], self._data_start + self._end[row])

    def __iter__(self):
        if self._order is None:
            self._order = lean_argsort(self._names, natural_key)
        names = self._names
        return (names[r] for r in self._order)

    def names(self) -> list:
        """The names in the header's order, by row (no sort: for callers that order the names themselves)."""
        return self._names


@dataclass(frozen=True)
class SafetensorsFile:
    """A checked safetensors header: the tensors in natural name order, and the file's identity."""

    path: str
    tensors: TensorTable  # name -> TensorInfo, natural order
    metadata: dict
    size: int
    mtime_ns: int
    data_start: int = field(repr=False)

    def loader(self, name: str | int) -> "TensorLoader":
        """A callable that returns ``load(name)`` (small: one per listed tensor); ``name`` may be the row."""
        return TensorLoader(self, name)

    def load(self, name: str | int) -> np.ndarray:
        """The tensor's values (float16/32/64; BF16 and FP8 as float32), read from the file now. ``name`` is the
        tensor's name or its row (``TensorTable.row``)."""
        info = self.tensors.at(name) if isinstance(name, int) else self.tensors[name]
        name = info.name
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


class TensorLoader:
    """``header.load(name)`` as a small callable (a closure per tensor costs ~4x as much)."""

    __slots__ = ("header", "name")

    def __init__(self, header: SafetensorsFile, name: str | int) -> None:
        self.header, self.name = header, name

    def __call__(self) -> np.ndarray:
        return self.header.load(self.name)


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


#: What the parser puts in place of a tensor entry it has checked and stored in the columns.
_ENTRY = object()


class _Columns:
    """Tensor entries as the parser meets them, one row each: dtype code, offsets, shape (flat dims)."""

    __slots__ = ("buffer", "dtypes", "dtype_codes", "codes", "begin", "end", "dims", "dim_start")

    def __init__(self, buffer: int) -> None:
        self.buffer = buffer
        self.dtypes: list = list(DTYPES)
        self.dtype_codes = {d: i for i, d in enumerate(self.dtypes)}
        self.codes, self.begin, self.end = array("i"), array("q"), array("q")
        self.dims, self.dim_start = array("q"), array("q", [0])

    def hook(self, pairs: list):
        """``object_pairs_hook``: a well-formed tensor entry goes into the columns (the parser keeps only
        ``_ENTRY`` for it); any other object becomes a dict (metadata, or a bad entry that ``_check_entry``
        then describes)."""
        out = _no_duplicates(pairs)
        if "data_offsets" not in out or _entry_problem(out, self.buffer):
            return out
        dtype = out["dtype"]
        code = self.dtype_codes.get(dtype)
        if code is None:
            code = self.dtype_codes[dtype] = len(self.dtypes)
            self.dtypes.append(dtype)
        self.codes.append(code)
        self.begin.append(out["data_offsets"][0])
        self.end.append(out["data_offsets"][1])
        self.dims.extend(out["shape"])
        self.dim_start.append(len(self.dims))
        return _ENTRY


def _entry_problem(entry: dict, buffer: int) -> str:
    """What is wrong with one tensor entry ("" when nothing): the checks of the module docstring."""
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not isinstance(dtype, str) or not dtype:
        return f"dtype {dtype!r} is not a string"
    if not isinstance(shape, list) or not all(_is_int(s) and s >= 0 for s in shape):
        return f"shape {shape!r} is not a list of non-negative integers"
    if len(shape) > 64:
        return f"{len(shape)} dimensions"
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) for o in offsets)):
        return f"data_offsets {offsets!r} is not a pair of integers"
    begin, end = offsets
    if not 0 <= begin <= end <= buffer:
        return f"data_offsets [{begin}, {end}] outside the {buffer}-byte data buffer"
    if dtype in DTYPES:
        count = 1
        for s in shape:
            count *= s
        expected = count * DTYPES[dtype][0]
        if expected != end - begin:
            return f"{dtype} {shape} needs {expected} bytes but data_offsets span {end - begin}"
    nonzero = 1
    for s in shape:
        nonzero *= max(s, 1)
    if nonzero > 2**60:  # numpy refuses such a shape even with a zero dimension (size in bytes past int64)
        return f"shape {shape} is too large"
    return ""


def read_header(path: str | os.PathLike) -> SafetensorsFile:
    """Read and check a safetensors header (see the module docstring); no tensor data is read.

    The top-level object is walked member by member (``_parse``) and each entry stored in columns as soon as
    it is parsed (``_Columns``), so reading holds the header's text, the names and ~40 bytes of columns per
    tensor, never a dict and two lists per tensor (docs/formats.md, "Limits").
    """
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
    data_start = 8 + length
    buffer = size - data_start
    columns = _Columns(buffer)
    try:
        text = raw.decode("utf-8")
        del raw  # the text alone from here: the header is held once, not twice
        names, metadata, problem = _parse(path, text, columns)
    except ModelFileError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise ModelFileError(path, f"header is not valid JSON: {str(err)[:200]}") from None
    del text
    _check_unique(path, names)
    if not isinstance(metadata, dict):
        raise ModelFileError(path, "__metadata__ is not an object")
    if problem is not None:
        name, value, stored = problem
        if stored:
            raise ModelFileError(path, "tensor entries nested inside other entries", tensor=name)
        _check_entry(path, name, value, buffer, data_start)  # raises: says what is wrong
        raise ModelFileError(path, "bad header entry: not a tensor entry", tensor=name)
    _check_overlaps(path, names, columns)
    table = TensorTable(names, columns, data_start)
    return SafetensorsFile(path, table, dict(metadata), size, st.st_mtime_ns, data_start)


_WHITESPACE = re.compile(r"[ \t\n\r]*")  # JSON's


def _parse(path: str, text: str, columns: _Columns) -> tuple[list, object, tuple | None]:
    """(tensor names in header order, ``__metadata__``, the first member that is not a tensor entry) of the
    header's JSON text, the entries stored in ``columns``: (name, value, entries stored while parsing it) or None.

    The top-level object is walked here, one member at a time (each value parsed by ``json``'s own scanner,
    through ``columns.hook``), so nothing but the names and the columns grows with the tensor count: ``json.loads``
    would hold a (name, value) pair and a dict slot per tensor on top (~0.13 KB, more than the header's own
    bytes for a flood of tiny entries). JSON syntax errors raise ``ValueError``, as ``json.loads`` would; what is
    wrong with the members is the caller's to say, after duplicate names (``json.loads``'s order of errors).
    """
    decoder = json.JSONDecoder(object_pairs_hook=columns.hook)
    ws = _WHITESPACE.match
    names: list = []
    metadata, seen_metadata, problem = None, False, None
    i = ws(text, 0).end()
    if text[i:i + 1] != "{":
        value = decoder.decode(text)  # not an object: the ValueError that says what is wrong, or what it is
        raise ModelFileError(path, f"header is a JSON {type(value).__name__}, not an object")
    i = ws(text, i + 1).end()
    if text[i:i + 1] == "}":
        i += 1
    else:
        while True:
            if text[i:i + 1] != '"':
                raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, i)
            name, i = json.decoder.scanstring(text, i + 1, True)
            i = ws(text, i).end()
            if text[i:i + 1] != ":":
                raise json.JSONDecodeError("Expecting ':' delimiter", text, i)
            i = ws(text, i + 1).end()
            before = len(columns.codes)
            value, i = decoder.raw_decode(text, i)
            stored = len(columns.codes) - before
            if name == "__metadata__":
                if seen_metadata:
                    raise ValueError("duplicate key '__metadata__'")
                metadata, seen_metadata = value or {}, True
                if stored and problem is None:
                    problem = (name, value, stored)
            else:
                names.append(name)  # a bad member's too: a duplicate name is said first, as json.loads would
                if len(names) > MAX_TENSORS:
                    raise ModelFileError(path, f"more than the {MAX_TENSORS} tensors a file may hold")
                if (value is not _ENTRY or stored != 1 or not name) and problem is None:
                    problem = (name, value, stored if value is not _ENTRY or stored != 1 else 0)
            i = ws(text, i).end()
            delimiter = text[i:i + 1]
            i += 1
            if delimiter == "}":
                break
            if delimiter != ",":
                raise json.JSONDecodeError("Expecting ',' delimiter", text, i - 1)
            i = ws(text, i).end()
    if ws(text, i).end() != len(text):
        raise json.JSONDecodeError("Extra data", text, i)
    return names, ({} if metadata is None else metadata), problem


def _check_unique(path: str, names: list) -> None:
    """ModelFileError when a name appears twice (what ``json.loads`` would silently keep the last of): names
    with equal hashes are compared, so this holds 16 bytes per name, not a set of them."""
    if len(names) < 2:
        return
    hashes = np.fromiter(map(hash, names), np.int64, len(names))
    order = np.argsort(hashes, kind="stable")
    hashes = hashes[order]
    same = np.flatnonzero(hashes[1:] == hashes[:-1])
    for k in same:  # the first of each pair of equal hashes; a run of equal hashes is tiny
        run = [names[r] for r in order[k:k + 2 + int(np.sum(hashes[k + 2:k + 64] == hashes[k]))]]
        if len(set(run)) < len(run):
            dup = next(n for n in run if run.count(n) > 1)
            raise ModelFileError(path, f"header is not valid JSON: duplicate key {dup!r}")


def _check_overlaps(path: str, names: list, columns: _Columns) -> None:
    begin = np.frombuffer(columns.begin, np.int64) if len(columns.begin) else np.zeros(0, np.int64)
    end = np.frombuffer(columns.end, np.int64) if len(columns.end) else np.zeros(0, np.int64)
    spans = np.flatnonzero(end > begin)
    spans = spans[np.argsort(begin[spans], kind="stable")]
    clash = np.flatnonzero(begin[spans[1:]] < end[spans[:-1]])
    if clash.size:
        a, b = int(spans[clash[0]]), int(spans[clash[0] + 1])
        raise ModelFileError(path, f"tensors {names[a]!r} and {names[b]!r} overlap in the data buffer")


def _check_entry(path: str, name: str, entry, buffer: int, data_start: int) -> None:
    """Raise the ``ModelFileError`` that says what is wrong with one tensor entry, if anything is."""
    if not name:
        raise ModelFileError(path, "bad header entry: empty tensor name", tensor=name)
    if not isinstance(entry, dict):
        raise ModelFileError(path, "bad header entry: not an object", tensor=name)
    problem = _entry_problem(entry, buffer)
    if problem:
        raise ModelFileError(path, f"bad header entry: {problem}", tensor=name)
