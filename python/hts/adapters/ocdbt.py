"""A read-only OCDBT key-value store: the database tensorstore writes inside an Orbax checkpoint directory.

Format (tensorstore's ``kvstore/ocdbt`` specification, read for facts): ``manifest.ocdbt`` holds a header
(magic ``0x0cdb3a2a`` big-endian, total length uint64le, version varint 0, compression varint 0/1 = none/zstd),
a body (config: uuid, manifest kind, max inline value bytes, max decoded node bytes, version-tree arity, node
compression; then a data-file table, the newest versions and older version nodes) and a CRC-32C footer.
The newest version names the root node of a B+tree as (data file, offset, length, height). B+tree nodes
(magic ``0x0cdb20de``) have the same header/footer; their body holds a height, a data-file table and
column-wise entries: interior nodes point to children, leaves map keys (prefix-compressed) to values stored
inline or out of line as (data file, offset, length). Data-file tables are prefix-compressed lists of
``base_path + relative_path``; a child node resolves its own table's paths under the base path of the file it
was read from (transitive paths, which is how Orbax's merged checkpoint points into ``ocdbt.process_N/``).

The whole tree is walked once on open (nodes only: values are not read), giving key -> ``ValueRef`` (held as
columns, ``Entries``; keys must increase strictly in tree order).
Everything read from the files is checked before it is used: every varint (at most 10 bytes, < 2^64), count
(at most the bytes left), length and offset (inside the node or the data file), CRC-32C of every manifest
and node, decompressed node sizes (at most the config's max decoded node bytes, capped at 64 MiB and at
1024 × the compressed size + 1 MiB), out-of-line values inside their data files (checked on listing), node
heights (strictly decreasing), and data-file paths (relative, no ``..``, no NUL, resolving — symlinks
included — inside the checkpoint directory). Violations raise ``hts.ModelFileError`` naming the file.
"""

from __future__ import annotations

import os
import struct
from array import array
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from ..errors import ModelFileError
from . import limits
from .compression import decompress
from .crc32c import crc32c

__all__ = ["Entries", "OcdbtStore", "ValueRef", "is_ocdbt"]

MANIFEST = "manifest.ocdbt"
_MANIFEST_MAGIC, _BTREE_MAGIC, _VERSION_MAGIC = 0x0CDB3A2A, 0x0CDB20DE, 0x0CDB1234
_MAX_NODE_BYTES = 64 * 2**20
#: A node (keys and value references, never tensor data) decodes to at most this many times its stored body
#: (+ 1 MiB): listing costs memory in proportion to the files.
_MAX_NODE_RATIO = 1 << 10
_MAX_HEIGHT = 32
_MAX_PATH = 65535


def is_ocdbt(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, MANIFEST))


@dataclass(frozen=True)
class ValueRef:
    """Where a value lives: ``inline`` bytes, or ``length`` bytes at ``offset`` of the data file ``file``."""

    length: int
    inline: bytes | None = None
    file: str = ""
    offset: int = 0


class Entries(Mapping):
    """key -> ``ValueRef`` of a database, in key order, held as columns: the keys concatenated in one buffer,
    the inline values in another, and a row of integers per key (end of its key; length; offset in its data
    file or in the inline buffer; data file number). A key costs its own bytes + 28 bytes, no Python object (a
    ``ValueRef`` and a ``bytes`` key per entry cost ~0.35 kB, more than a flood of tiny arrays takes in the
    files; docs/formats.md, "Limits"). Inline values of ``_SHARED`` bytes or more are stored once however many
    keys hold them: OCDBT nodes are zstd-compressed, and a checkpoint's zarr metadata repeats (one document per
    shape and dtype), so storing each copy would hold ~50 × what the node takes in the file. Keys must come in
    strictly increasing order, as a B+tree walked in order gives them (``add`` raises ``ValueError``
    otherwise); lookups bisect. Each lookup makes a new, equal ``ValueRef``."""

    __slots__ = ("_keys", "_key_end", "_length", "_offset", "_file", "_inline", "_shared", "_files", "_file_ids",
                 "_last")
    _SHARED = 64

    def __init__(self) -> None:
        self._keys, self._inline = bytearray(), bytearray()
        self._key_end, self._length, self._offset = array("q"), array("q"), array("q")
        self._file = array("i")  # -1: inline
        self._shared: dict[bytes, int] = {}  # inline value -> its offset in _inline
        self._files: list[str] = []
        self._file_ids: dict[str, int] = {}
        self._last = b""

    def add(self, key: bytes, length: int, *, inline: bytes | None = None, file: str = "", offset: int = 0) -> None:
        """A key whose value is ``inline``, or ``length`` bytes at ``offset`` of the data file ``file``."""
        if self._key_end and key <= self._last:
            raise ValueError("keys are not in strictly increasing order")
        if inline is None:
            fid = self._file_ids.setdefault(file, len(self._files))
            if fid == len(self._files):
                self._files.append(file)
        else:
            fid, offset = -1, -1
            if len(inline) >= self._SHARED:
                inline = bytes(inline)  # hashable
                offset = self._shared.get(inline, -1)
            if offset < 0:
                offset = len(self._inline)
                self._inline += inline
                if len(inline) >= self._SHARED:
                    self._shared[inline] = offset
        self._keys += key
        self._key_end.append(len(self._keys))
        self._length.append(length)
        self._offset.append(offset)
        self._file.append(fid)
        self._last = key

    def _key(self, row: int) -> bytes:
        return bytes(self._keys[self._key_end[row - 1] if row else 0:self._key_end[row]])

    def _bisect(self, key: bytes) -> int:
        """The first row whose key is >= ``key``."""
        lo, hi = 0, len(self._key_end)
        keys, end = self._keys, self._key_end
        while lo < hi:
            mid = (lo + hi) // 2
            if keys[end[mid - 1] if mid else 0:end[mid]] < key:  # a bytearray slice compares as bytes
                lo = mid + 1
            else:
                hi = mid
        return lo

    def __getitem__(self, key: bytes) -> ValueRef:
        row = self._bisect(key)
        if row == len(self._key_end) or self._key(row) != key:
            raise KeyError(key)
        length, offset, fid = self._length[row], self._offset[row], self._file[row]
        if fid < 0:
            return ValueRef(length, inline=bytes(self._inline[offset:offset + length]))
        return ValueRef(length, file=self._files[fid], offset=offset)

    def keys_from(self, prefix: bytes) -> Iterator[bytes]:
        """The keys starting with ``prefix``, in order."""
        for row in range(self._bisect(prefix), len(self._key_end)):
            key = self._key(row)
            if not key.startswith(prefix):
                return
            yield key

    def __iter__(self) -> Iterator[bytes]:
        return (self._key(row) for row in range(len(self._key_end)))

    def __len__(self) -> int:
        return len(self._key_end)


class _Cursor:
    """Reads fields from a decoded body; any overrun is a ModelFileError naming the file and ``what``."""

    def __init__(self, data: bytes, path: str, what: str) -> None:
        self.data, self.pos, self.path, self.what = data, 0, path, what

    def fail(self, message: str) -> ModelFileError:
        return ModelFileError(self.path, f"{self.what}: {message} (at byte {self.pos} of the decoded body)")

    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> bytes:
        if n < 0 or n > self.left():
            raise self.fail(f"{n} bytes expected, {self.left()} left")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def varint(self) -> int:
        value = shift = 0
        for i in range(10):
            if self.pos >= len(self.data):
                raise self.fail("truncated varint")
            b = self.data[self.pos]
            self.pos += 1
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                if value >= 1 << 64 or (i and b == 0):
                    raise self.fail("invalid varint")
                return value
            shift += 7
        raise self.fail("varint longer than 10 bytes")

    def count(self, per_item: int = 1) -> int:
        """A varint count of items that take at least ``per_item`` bytes each."""
        n = self.varint()
        if n * per_item > self.left():
            raise self.fail(f"a count of {n} exceeds the {self.left()} bytes left")
        return n

    def varints(self, n: int) -> list[int]:
        return [self.varint() for _ in range(n)]


class OcdbtStore:
    """The keys of an OCDBT database in ``folder`` (see the module docstring)."""

    def __init__(self, folder: str) -> None:
        self.folder = os.path.abspath(folder)
        self._real = os.path.realpath(self.folder)
        self.entries = Entries()
        self._sizes: dict[str, int] = {}
        manifest = os.path.join(self.folder, MANIFEST)
        raw = self._read_file_range(manifest, 0, None, "manifest")
        body = self._unframe(raw, manifest, _MANIFEST_MAGIC, "manifest", None)
        c = _Cursor(body, manifest, "manifest")
        c.take(16)  # uuid
        kind = c.varint()
        if kind != 0:
            raise c.fail(f"manifest kind {kind} (numbered manifests) is not supported")
        c.varint()  # max inline value bytes
        self.max_node = min(c.varint(), _MAX_NODE_BYTES)
        arity_log2 = c.u8()
        if not 1 <= arity_log2 <= 16:
            raise c.fail(f"version tree arity log2 {arity_log2} out of range")
        method = c.varint()
        if method == 1:
            c.take(4)  # zstd level
        elif method != 0:
            raise c.fail(f"unknown compression method {method}")
        files = self._file_table(c, "")
        n = c.count(13)
        gens, heights = c.varints(n), list(c.take(n))
        ids, offsets, lengths = c.varints(n), c.varints(n), c.varints(n)
        c.varints(3 * n)  # num_keys, num_tree_bytes, num_indirect_value_bytes
        c.take(8 * n)  # commit times
        if any(b <= a for a, b in zip(gens, gens[1:])) or (gens and gens[0] == 0):
            raise c.fail("generation numbers are not increasing from 1")
        m = c.count(1)  # older versions: checked for shape only, never followed
        c.varints(5 * m)
        c.take(8 * m + m)
        if c.left():
            raise c.fail(f"{c.left()} bytes of trailing data")
        if not n:
            return  # an empty database
        ref = self._ref(files, ids[-1], offsets[-1], lengths[-1], c)
        self._walk(ref, heights[-1], b"", 0)

    # --- files -----------------------------------------------------------------------------------------------

    def data_path(self, relative: bytes, where: str) -> str:
        """The absolute path of a data file named in a table, refused unless it stays inside the folder."""
        try:
            rel = relative.decode("utf-8")
        except UnicodeDecodeError:
            raise ModelFileError(where, "a data file path is not UTF-8") from None
        parts = rel.split("/")
        if (not rel or "\x00" in rel or "\\" in rel or rel.startswith("/") or os.path.isabs(rel)
                or any(p in ("", ".", "..") for p in parts)):
            raise ModelFileError(where, f"data file path {rel[:200]!r} is not a plain relative path inside the "
                                        "checkpoint (refused)")
        full = os.path.join(self.folder, *parts)
        real = os.path.realpath(full)
        if os.path.commonpath([real, self._real]) != self._real:
            raise ModelFileError(where, f"data file {rel[:200]!r} resolves outside the checkpoint directory "
                                        "(a symlink?); refused")
        return full

    def _read_file_range(self, path: str, offset: int, length: int | None, what: str) -> bytes:
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if length is None:
                    length = size
                    if size > _MAX_NODE_BYTES:
                        raise ModelFileError(path, f"{what} of {size} bytes is larger than the "
                                                   f"{_MAX_NODE_BYTES} allowed")
                if offset + length > size:
                    raise ModelFileError(path, f"{what} at bytes {offset}..{offset + length} runs past the end "
                                               f"of the {size}-byte file (truncated?)")
                f.seek(offset)
                return f.read(length)
        except OSError as err:
            raise ModelFileError(path, f"cannot read the {what}: {err.strerror or err}") from None

    def read(self, ref: ValueRef, start: int = 0, length: int | None = None, *, tensor: str | None = None
             ) -> bytes:
        """``length`` bytes (default: to the end) of a value from byte ``start``."""
        if length is None:
            length = ref.length - start
        if start < 0 or length < 0 or start + length > ref.length:
            raise ModelFileError(ref.file or self.folder, f"bytes {start}..{start + length} of a "
                                                          f"{ref.length}-byte value requested", tensor=tensor)
        if ref.inline is not None:
            return ref.inline[start:start + length]
        try:
            return self._read_file_range(ref.file, ref.offset + start, length, "value")
        except ModelFileError as err:
            raise ModelFileError(ref.file, str(err).split(": ", 1)[-1], tensor=tensor) from None

    def _size(self, path: str) -> int:
        if path not in self._sizes:
            try:
                self._sizes[path] = os.stat(path).st_size
            except OSError as err:
                raise ModelFileError(path, f"cannot read the data file: {err.strerror or err}") from None
        return self._sizes[path]

    # --- nodes -----------------------------------------------------------------------------------------------

    def _unframe(self, raw: bytes, path: str, magic: int, what: str, limit: int | None) -> bytes:
        if len(raw) < 18:
            raise ModelFileError(path, f"{what} of {len(raw)} bytes is too short (truncated?)")
        got_magic, length = struct.unpack(">I", raw[:4])[0], struct.unpack("<Q", raw[4:12])[0]
        if got_magic != magic:
            raise ModelFileError(path, f"{what} has magic 0x{got_magic:08x}, not 0x{magic:08x}")
        if length != len(raw):
            raise ModelFileError(path, f"{what} says it is {length} bytes long but {len(raw)} were stored "
                                       "(truncated?)")
        stored = struct.unpack("<I", raw[-4:])[0]
        if crc32c(memoryview(raw)[:-4]) != stored:
            raise ModelFileError(path, f"{what} fails its CRC-32C check (corrupt)")
        c = _Cursor(raw[:-4], path, what)
        c.pos = 12
        version, compression = c.varint(), c.varint()
        if version != 0:
            raise ModelFileError(path, f"{what} has format version {version}, only 0 is known")
        body = raw[c.pos:-4]
        if compression == 1:
            cap = min(limit or _MAX_NODE_BYTES, len(body) * _MAX_NODE_RATIO + 2**20)
            return decompress("zstd", body, cap, path)
        if compression != 0:
            raise ModelFileError(path, f"{what} has unknown compression {compression}")
        return body

    def _file_table(self, c: _Cursor, transitive: str) -> list[tuple[str, str]]:
        """[(absolute path, transitive path for nodes read from it)] of a data-file table."""
        n = c.count(1)
        prefix = c.varints(max(n - 1, 0))
        suffix, base = c.varints(n), c.varints(n)
        out, prev = [], b""
        for i in range(n):
            keep = prefix[i - 1] if i else 0
            if keep > len(prev):
                raise c.fail(f"data file {i}: shared prefix {keep} longer than the previous path")
            path = prev[:keep] + c.take(suffix[i])
            if len(transitive) + len(path) > _MAX_PATH or base[i] > len(path):
                raise c.fail(f"data file {i}: path or base path length out of range")
            base_path = transitive + path[:base[i]].decode("utf-8", "replace")
            out.append((self.data_path(transitive.encode() + path, c.path), base_path))
            prev = path
        return out

    def _ref(self, files: list, fid: int, offset: int, length: int, c: _Cursor) -> tuple:
        if fid >= len(files):
            raise c.fail(f"data file id {fid} is not in the table of {len(files)}")
        return files[fid], offset, length

    def _walk(self, ref: tuple, height: int, prefix: bytes, depth: int) -> None:
        (path, transitive), offset, length = ref
        if height > _MAX_HEIGHT or depth > _MAX_HEIGHT:
            raise ModelFileError(path, f"B+tree deeper than {_MAX_HEIGHT} levels")
        raw = self._read_file_range(path, offset, length, "B+tree node")
        body = self._unframe(raw, path, _BTREE_MAGIC, "B+tree node", self.max_node)
        c = _Cursor(body, path, f"B+tree node at byte {offset}")
        got = c.u8()
        if got != height:
            raise c.fail(f"height {got}, {height} expected from its parent")
        files = self._file_table(c, transitive)
        n = c.count(2)
        keys = self._keys(c, n, height > 0)
        if height:
            common = keys.pop()
            ids, offsets, lengths = c.varints(n), c.varints(n), c.varints(n)
            c.varints(3 * n)  # subtree statistics
            if c.left():
                raise c.fail(f"{c.left()} bytes of trailing data")
            for i in range(n):
                if common[i] > len(keys[i]):
                    raise c.fail(f"entry {i}: subtree prefix {common[i]} longer than its key")
                child = self._ref(files, ids[i], offsets[i], lengths[i], c)
                self._walk(child, height - 1, prefix + keys[i][:common[i]], depth + 1)
            return
        lengths, kinds = c.varints(n), c.varints(n)
        if any(k > 1 for k in kinds):
            raise c.fail("value kind is neither 0 (inline) nor 1 (out of line)")
        indirect = [i for i in range(n) if kinds[i] == 1]
        ids, offsets = c.varints(len(indirect)), c.varints(len(indirect))
        located = dict(zip(indirect, zip(ids, offsets)))
        if len(self.entries) + n > limits.MAX_TENSORS * 4:
            raise c.fail(f"more than {limits.MAX_TENSORS * 4} keys in the database")
        for i in range(n):
            key, keys[i] = prefix + keys[i], None  # each key held once: in the list, then in the columns
            try:
                if i in located:
                    (file, _), _, _ = self._ref(files, located[i][0], 0, 0, c)
                    size = self._size(file)
                    if located[i][1] + lengths[i] > size:
                        raise c.fail(f"value {i} at bytes {located[i][1]}..{located[i][1] + lengths[i]} runs past "
                                     f"the end of its {size}-byte data file {os.path.basename(file)}")
                    self.entries.add(key, lengths[i], file=file, offset=located[i][1])
                else:
                    self.entries.add(key, lengths[i], inline=c.take(lengths[i]))
            except ValueError:
                raise c.fail(f"key {i} {key[:80]!r} is not after the key before it (keys out of order or "
                             "repeated)") from None
        if c.left():
            raise c.fail(f"{c.left()} bytes of trailing data")

    def _keys(self, c: _Cursor, n: int, interior: bool) -> list:
        prefix = c.varints(max(n - 1, 0))
        suffix = c.varints(n)
        common = c.varints(n) if interior else None
        keys, prev = [], b""
        for i in range(n):
            keep = prefix[i - 1] if i else 0
            if keep > len(prev):
                raise c.fail(f"key {i}: shared prefix {keep} longer than the previous key")
            key = prev[:keep] + c.take(suffix[i])
            keys.append(key)
            prev = key
        if interior:
            keys.append(common)
        return keys
