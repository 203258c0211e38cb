"""A structure-aware fuzzer for Orbax checkpoint directories (tests/test_fuzz_orbax.py, bench/fuzz_orbax.py).

``hostile_orbax(source)`` returns ``{relative path: bytes}`` of a checkpoint folder ``ckpt/`` written with this
module's own encoders (independent of hts's readers): ``_METADATA``; either an OCDBT database (manifest, B+tree
leaf and interior nodes in data files, values inline or out of line, zstd or raw node bodies) or one zarr folder
per array; zarr v2 ``.zarray`` / v3 ``zarr.json`` metadata; chunks raw, zstd, gzip or zlib, with CRC-32C and
``sharding_indexed`` shards. Any field can lie: varints, counts, lengths, offsets, heights, magic, versions,
data-file paths (``..``, absolute), key prefixes, JSON (shapes, chunks, dtypes, codecs, fill values, garbage),
chunk bytes (truncated, garbage, bombs), shard indexes. CRCs are recomputed after most lies, so the parser's
deeper checks are reached; some are left wrong. ``source`` is ``_fuzz_gguf.HypothesisSource`` or
``RandomSource``.
"""

from __future__ import annotations

import gzip
import json
import math
import struct
import zlib

import zstandard
from _fuzz_gguf import U64_EDGES, _Liar

NAMES = ["params.Dense_0.kernel", "params.Conv_0.kernel", "params.Embed_0.embedding", "lin.kernel.value",
         "opt_state.0.mu.Dense_0.kernel", "params.Dense_0.bias", "a"]
V2_DTYPES = ["<f4", "<f2", "bfloat16", ">f4", "<f8", "|i1"]
V3_DTYPES = ["float32", "float16", "bfloat16", "float64", "int8"]
HOSTILE_DTYPES = ["|O", "<U4", "V8", "<c8", "", "float128", "complex64", "|S4", None, 7]
ITEM = {"<f4": 4, "<f2": 2, "bfloat16": 2, ">f4": 4, "<f8": 8, "|i1": 1, "float32": 4, "float16": 2,
        "float64": 8, "int8": 1}
EVIL_PATHS = ["../evil", "/etc/passwd", "d/../../x", "", "d//x", "d/\x00x", "./d/x", "d\\..\\x", "\xff\xfe"]


def _crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    return c ^ 0xFFFFFFFF


class _Enc:
    def __init__(self, liar: _Liar) -> None:
        self.liar = liar
        self.draw = liar.draw

    def varint(self, n: int) -> bytes:
        n = self.liar.int(n)
        out = bytearray()
        while True:
            b = n & 0x7F
            n >>= 7
            out.append(b | (0x80 if n else 0))
            if not n:
                break
        if self.liar.lying():  # over-long or unterminated encodings
            out = bytearray(self.draw.pick([b"\x80" * 11, b"\xff" * 10 + b"\x01", b"\x80\x00", b"\xff"]))
        return bytes(out)

    def table(self, paths: list[bytes], bases: list[int]) -> bytes:
        out = self.varint(len(paths))
        shared = [len(_common(a, b)) for a, b in zip(paths, paths[1:])]
        out += b"".join(self.varint(n) for n in shared)
        suffixes = [p[(shared[i - 1] if i else 0):] for i, p in enumerate(paths)]
        out += b"".join(self.varint(len(s)) for s in suffixes)
        out += b"".join(self.varint(b) for b in bases)
        return out + b"".join(suffixes)

    def frame(self, magic: int, body: bytes, compress: bool) -> bytes:
        if compress:
            body = zstandard.ZstdCompressor().compress(body)
            if self.liar.lying():  # a bomb: the body claims far more than a node may hold
                body = zstandard.ZstdCompressor().compress(bytes(self.draw.pick([2**20, 70 * 2**20])))
        head = struct.pack(">I", self.liar.pick([magic], [0, magic ^ 1, 0x0CDB3A2A, 0x0CDB20DE]))
        rest = self.varint(self.liar.pick([0], [1, 2**40])) + self.varint(self.liar.pick([int(compress)], [2, 7]))
        total = 4 + 8 + len(rest) + len(body) + 4
        raw = head + struct.pack("<Q", self.liar.int(total)) + rest + body
        crc = _crc32c(raw)
        if self.liar.lying():
            crc ^= 1 << self.draw.int(0, 31)
        return raw + struct.pack("<I", crc)


def _common(a: bytes, b: bytes) -> bytes:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


class _Files:
    """Data files of the database: appends blobs, returns (file id, offset, length)."""

    def __init__(self, enc: _Enc) -> None:
        self.enc = enc
        self.paths = [b"d/" + b"%032x" % enc.draw.int(0, 2**64) for _ in range(enc.draw.int(1, 2))]
        self.blobs = [b"" for _ in self.paths]

    def add(self, blob: bytes) -> tuple:
        i = self.enc.draw.int(0, len(self.paths) - 1)
        off = len(self.blobs[i])
        self.blobs[i] += blob
        return i, off, len(blob)

    def table(self) -> bytes:
        liar = self.enc.liar
        paths = [liar.pick([p], [e.encode("utf-8", "surrogateescape") for e in EVIL_PATHS]) for p in self.paths]
        return self.enc.table(paths, [0] * len(paths))


def _leaf(enc: _Enc, items: list, files: _Files, compress: bool) -> bytes:
    liar, draw = enc.liar, enc.draw
    n = len(items)
    body = bytes([liar.pick([0], [1, 5, 255])]) + files.table() + enc.varint(n)
    keys = [k for k, _ in items]
    shared = [len(_common(a, b)) for a, b in zip(keys, keys[1:])]
    body += b"".join(enc.varint(s) for s in shared)
    body += b"".join(enc.varint(len(k) - (shared[i - 1] if i else 0)) for i, k in enumerate(keys))
    body += b"".join(k[(shared[i - 1] if i else 0):] for i, k in enumerate(keys))
    inline = [draw.int(0, 2) > 0 and len(v) < 200 for _, v in items]
    body += b"".join(enc.varint(len(v)) for _, v in items)
    body += b"".join(enc.varint(0 if i else liar.pick([1], [2, 9])) for i in inline)
    refs = [files.add(v) for (_, v), i in zip(items, inline) if not i]
    body += b"".join(enc.varint(f) for f, _, _ in refs) + b"".join(enc.varint(o) for _, o, _ in refs)
    body += b"".join(v for (_, v), i in zip(items, inline) if i)
    return enc.frame(0x0CDB20DE, body, compress)


def _btree(enc: _Enc, items: list, files: _Files, compress: bool) -> tuple:
    """(file id, offset, length, height) of the root of a B+tree holding ``items`` (sorted (key, value))."""
    draw = enc.draw
    if len(items) < 3 or draw.int(0, 2):
        return (*files.add(_leaf(enc, items, files, compress)), 0)
    cut = draw.int(1, len(items) - 1)
    children = []
    for part in (items[:cut], items[cut:]):
        prefix = _common(part[0][0], part[-1][0])[: draw.int(0, 3)]
        node = _leaf(enc, [(k[len(prefix):], v) for k, v in part], files, compress)
        children.append((part[0][0], len(prefix), files.add(node)))
    liar = enc.liar
    keys = [k for k, _, _ in children]
    shared = len(_common(keys[0], keys[1]))
    body = bytes([liar.pick([1], [0, 2, 200])]) + files.table() + enc.varint(2) + enc.varint(shared)
    body += enc.varint(len(keys[0])) + enc.varint(len(keys[1]) - shared)
    body += b"".join(enc.varint(c) for _, c, _ in children)
    body += keys[0] + keys[1][shared:]
    body += b"".join(enc.varint(f) for _, _, (f, _, _) in children)
    body += b"".join(enc.varint(o) for _, _, (_, o, _) in children)
    body += b"".join(enc.varint(n) for _, _, (_, _, n) in children)
    body += b"".join(enc.varint(draw.int(0, 9)) for _ in range(6))
    return (*files.add(enc.frame(0x0CDB20DE, body, compress)), 1)


def _manifest(enc: _Enc, files: _Files, root: tuple, nkeys: int, compress: bool) -> bytes:
    liar, draw = enc.liar, enc.draw
    fid, off, length, height = root
    body = draw.bytes(16) + enc.varint(liar.pick([0], [1, 2])) + enc.varint(100) + enc.varint(
        liar.pick([2**20], [0, 10, 2**40])) + bytes([liar.pick([4], [0, 17, 255])])
    body += enc.varint(int(compress)) + (struct.pack("<i", 0) if compress else b"")
    body += files.table() + enc.varint(liar.pick([1], [0, 2, 2**32]))
    body += enc.varint(1) + bytes([liar.pick([height], [height + 1, 40])]) + enc.varint(fid) + enc.varint(off)
    body += enc.varint(length) + enc.varint(nkeys) + enc.varint(length) + enc.varint(0) + struct.pack("<Q", 0)
    body += enc.varint(liar.pick([0], [1, 3]))
    return enc.frame(0x0CDB3A2A, body, compress)


def _compress(name: str, raw: bytes) -> bytes:
    if name == "zstd":
        return zstandard.ZstdCompressor().compress(raw)
    if name == "gzip":
        return gzip.compress(raw)
    if name == "zlib":
        return zlib.compress(raw)
    return raw


def _array(enc: _Enc, v3: bool) -> tuple[dict, dict]:
    """(zarr metadata, {chunk key: bytes}) of one array."""
    liar, draw = enc.liar, enc.draw
    ndim = liar.pick([2, 2, 4, 3, 1], [0, 33])
    shape = [draw.pick([1, 2, 3, 5, 8]) if ndim <= 4 else 1 for _ in range(ndim)]
    chunks = [max(1, s // draw.pick([1, 1, 2])) for s in shape]
    dtype = draw.pick(V3_DTYPES if v3 else V2_DTYPES)
    comp = draw.pick(["zstd", "zstd", "gzip", None] + ([] if v3 else ["zlib"]))
    sharded = v3 and draw.int(0, 2) == 0
    crc = v3 and draw.int(0, 1)
    if v3:
        inner = [max(1, c // draw.pick([1, 2])) if c % 2 == 0 else c for c in chunks]
        codecs = [{"name": "bytes", "configuration": {"endian": "little"}}] + (
            [{"name": comp, "configuration": {"level": 1}}] if comp else []) + ([{"name": "crc32c"}] if crc else [])
        at_end = bool(draw.int(0, 1))
        if sharded:
            codecs = [{"name": "sharding_indexed", "configuration": {
                "chunk_shape": inner, "codecs": codecs, "index_location": "end" if at_end else "start",
                "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}]}}]
        meta = {"zarr_format": 3, "node_type": "array", "shape": shape, "data_type": dtype, "fill_value": 0.0,
                "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunks}},
                "chunk_key_encoding": {"name": "default"}, "codecs": codecs}
    else:
        meta = {"zarr_format": 2, "shape": shape, "chunks": chunks, "dtype": dtype, "order": draw.pick(["C", "F"]),
                "compressor": {"id": comp, "level": 1} if comp else None, "filters": None, "fill_value": None,
                "dimension_separator": "."}
    _lie_json(enc, meta, v3)
    out = {}
    grid = [-(-s // c) for s, c in zip(shape, chunks)]
    for index in _ndindex(grid):
        if draw.int(0, 7) == 0:
            continue  # missing chunk: fill value
        key = ("c/" + "/".join(map(str, index)) if index else "c") if v3 else (".".join(map(str, index)) or "0")
        if liar.lying():
            key = draw.pick(["99.99", "c/9/9", "-1", "..", "0"])
        n = math.prod(chunks) * ITEM[dtype]
        if sharded:
            blob = _shard(enc, chunks, inner, ITEM[dtype], comp, crc, at_end)
        else:
            raw = draw.bytes(n)
            blob = _compress(comp, raw) if comp else raw
            if crc:
                blob += struct.pack("<I", _crc32c(blob))
        out[key] = _lie_bytes(enc, blob)
    return meta, out


def _shard(enc: _Enc, chunks: list, inner: list, item: int, comp, crc, at_end: bool) -> bytes:
    draw, liar = enc.draw, enc.liar
    count = math.prod(c // i for c, i in zip(chunks, inner)) if all(c % i == 0 for c, i in zip(chunks, inner)) \
        else 1
    data, entries = b"", []
    base = 0 if at_end else 16 * count + 4
    for _ in range(count):
        if draw.int(0, 5) == 0:
            entries.append((2**64 - 1, 2**64 - 1))
            continue
        blob = draw.bytes(math.prod(inner) * item)
        blob = _compress(comp, blob) if comp else blob
        if crc:
            blob += struct.pack("<I", _crc32c(blob))
        entries.append((liar.int(base + len(data)), liar.int(len(blob))))
        data += blob
    index = b"".join(struct.pack("<QQ", o & (2**64 - 1), n & (2**64 - 1)) for o, n in entries)
    index += struct.pack("<I", _crc32c(index) ^ (1 if liar.lying() else 0))
    return data + index if at_end else index + data


def _lie_json(enc: _Enc, meta: dict, v3: bool) -> None:
    liar, draw = enc.liar, enc.draw
    if liar.lying():
        meta["shape"] = [draw.pick(U64_EDGES + [2**20, 2**30, -1, 3.5]) for _ in meta["shape"]] or [2**41]
    if liar.lying():
        big = draw.pick([0, -2, 2**20, 2**40, "x"])
        if v3:
            meta["chunk_grid"]["configuration"]["chunk_shape"] = [big] * len(meta["shape"])
        else:
            meta["chunks"] = [big] * len(meta["shape"])
    if liar.lying():
        meta["data_type" if v3 else "dtype"] = draw.pick(HOSTILE_DTYPES)
    if liar.lying():
        meta["fill_value"] = draw.pick(["NaN", "abc", [1], True, 1e400, {"a": 1}])
    if liar.lying():
        if v3:
            meta["codecs"] = draw.pick([[{"name": "blosc"}], [], "x", [{"name": "transpose", "configuration":
                                        {"order": [0, 0]}}], [{"name": "bytes"}, {"name": "bytes"}]])
        else:
            meta["compressor"] = draw.pick([{"id": "blosc"}, {"id": "lz4"}, "zstd", 5])
    if liar.lying():
        meta["zarr_format"] = draw.pick([1, 4, "2", None])
    if liar.lying() and not v3:
        meta["filters"] = [{"id": "delta"}]


def _lie_bytes(enc: _Enc, blob: bytes) -> bytes:
    liar, draw = enc.liar, enc.draw
    if liar.lying():
        return blob[: draw.int(0, len(blob))]
    if liar.lying():
        return draw.bytes(draw.int(0, 64))
    if liar.lying():
        return zstandard.ZstdCompressor(write_content_size=bool(draw.int(0, 1))).compress(bytes(2**20))
    return blob


def _ndindex(grid: list):
    if not grid:
        yield ()
        return
    idx = [0] * len(grid)
    if any(g <= 0 for g in grid):
        return
    while True:
        yield tuple(idx)
        for d in reversed(range(len(grid))):
            idx[d] += 1
            if idx[d] < grid[d]:
                break
            idx[d] = 0
        else:
            return


def hostile_orbax(draw) -> dict:
    """``{path: bytes}`` of a checkpoint folder ``ckpt/`` (the first entry, ``"ckpt/"``, is the folder)."""
    liar = _Liar(draw)
    enc = _Enc(liar)
    v3 = bool(draw.int(0, 1))
    names = sorted({draw.pick(NAMES) for _ in range(draw.int(1, 3))})
    values = {}
    for name in names:
        meta, chunks = _array(enc, v3)
        text = json.dumps(meta).encode()
        if liar.lying():
            text = draw.pick([text[: draw.int(0, len(text))], b"\xff\xfe", b"[1, 2]", b"{" * 5000])
        values[f"{name}/{'zarr.json' if v3 else '.zarray'}".encode()] = text
        for key, blob in chunks.items():
            values[f"{name}/{key}".encode()] = blob
    tree = {str(tuple(n.split("."))): {"key_metadata": [{"key": k, "key_type": 2} for k in n.split(".")],
                                       "value_metadata": {"value_type": "jax.Array", "skip_deserialize": False}}
            for n in names}
    if liar.lying():
        tree["('ghost',)"] = {"key_metadata": [{"key": "ghost", "key_type": 2}],
                              "value_metadata": {"value_type": "jax.Array"}}
    meta = json.dumps({"tree_metadata": tree, "use_ocdbt": True}).encode()
    if liar.lying():
        meta = draw.pick([meta[: draw.int(0, len(meta))], b"[]", b'{"tree_metadata": 3}',
                          b'{"tree_metadata": {"x": {"key_metadata": [{"key": null}]}}}'])
    out = {"ckpt/": b"", "ckpt/_METADATA": meta}
    if draw.int(0, 3) == 0:  # use_ocdbt=False: one folder per array
        for key, blob in values.items():
            if not {"..", "."} & set(key.decode().split("/")):  # a folder cannot hold those names
                out["ckpt/" + key.decode()] = blob
        return out
    enc_files = _Files(enc)
    compress = bool(draw.int(0, 2))
    items = sorted(values.items())
    root = _btree(enc, items, enc_files, compress)
    out["ckpt/manifest.ocdbt"] = _manifest(enc, enc_files, root, len(items), compress)
    for path, blob in zip(enc_files.paths, enc_files.blobs):
        data = blob
        if liar.lying() and data:
            data = data[: draw.int(0, len(data) - 1)]
        out["ckpt/" + path.decode()] = data
    return out


#: Allocation bound, × the checkpoint's bytes (+ 4 MiB): an OCDBT node may decode to 1,024 × its stored body
#: + 1 MiB (ocdbt), held with its parsed fields.
WIDEN = 2 * 1024 + 16
#: ... + × the largest tensor loaded: a tensor is allocated at its declared size, whatever its stored bytes (a
#: constant tensor, missing chunks: zarr_array), and held with one decoded chunk (at most the array + 1 MiB);
#: bfloat16 is widened to float32 beside its 16-bit array (the float32 result is the tensor loaded).
PER_TENSOR = 2.5
