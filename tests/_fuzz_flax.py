"""A structure-aware fuzzer for Flax msgpack checkpoints (tests/test_fuzz_flax.py, bench/fuzz_flax.py).

``hostile_flax(source)`` writes a checkpoint in ``flax.serialization``'s layout (nested maps, ndarrays as
ExtType 1 of ``[shape, dtype, bytes]``, chunked arrays, nnx ``value`` wrappers, scalars, lists) with its own
msgpack encoder, so any field can lie: map/array counts, string/bin/ext lengths, shapes against data sizes,
dtype names, chunk indices and dtypes, nesting depth, trailing bytes, truncation. ``source`` is
``_fuzz_gguf.HypothesisSource`` or ``RandomSource``.
"""

from __future__ import annotations

import struct

from _fuzz_gguf import U64_EDGES, _Liar

DTYPES = ["float32", "float16", "bfloat16", "float64", "int8", "uint8", "bool"]
HOSTILE_DTYPES = ["object", "S4", "<U2", "V8", "complex64", "float128", "", "\xff", "int64", ">f4", "M8[ns]"]
KEYS = ["params", "Dense_0", "Conv_0", "Embed_0", "kernel", "embedding", "bias", "value", "raw_value", "layers",
        "opt_state", "0", "__msgpack_chunked_array__"]
LEAVES = ["kernel", "kernel", "embedding"]


class _Packer:
    """A msgpack encoder whose lengths and counts pass through the liar."""

    def __init__(self, liar: _Liar) -> None:
        self.liar = liar

    def _len(self, n: int, fix: tuple | None, wide: list) -> bytes:
        """Header for a length n: fix = (base, max) for the 1-byte form; wide = [(marker, fmt)] by size."""
        n = self.liar.int(n, 32)
        if fix and n <= fix[1] and self.liar.draw.int(0, 3):
            return bytes([fix[0] | n])
        for marker, fmt in wide:
            if n < 2 ** (8 * struct.calcsize(fmt)):
                return bytes([marker]) + struct.pack(fmt, n)
        return bytes([wide[-1][0]]) + struct.pack(wide[-1][1], n & 0xFFFFFFFF)

    def str(self, text: str) -> bytes:
        raw = text.encode("utf-8", "surrogateescape")
        return self._len(len(raw), (0xA0, 31), [(0xD9, ">B"), (0xDA, ">H"), (0xDB, ">I")]) + raw

    def bin(self, raw: bytes) -> bytes:
        return self._len(len(raw), None, [(0xC4, ">B"), (0xC5, ">H"), (0xC6, ">I")]) + raw

    def array(self, items: list) -> bytes:
        return self._len(len(items), (0x90, 15), [(0xDC, ">H"), (0xDD, ">I")]) + b"".join(items)

    def map(self, pairs: list) -> bytes:
        return (self._len(len(pairs), (0x80, 15), [(0xDE, ">H"), (0xDF, ">I")])
                + b"".join(self.str(k) + v for k, v in pairs))

    def uint(self, n: int) -> bytes:
        n = self.liar.int(n)
        if n <= 0x7F:
            return bytes([n])
        for marker, fmt in [(0xCC, ">B"), (0xCD, ">H"), (0xCE, ">I"), (0xCF, ">Q")]:
            if n < 2 ** (8 * struct.calcsize(fmt)):
                return bytes([marker]) + struct.pack(fmt, n)
        raise AssertionError(n)

    def ext(self, code: int, payload: bytes) -> bytes:
        n = self.liar.int(len(payload), 32)
        if n in (1, 2, 4, 8, 16) and self.liar.draw.int(0, 1):
            head = bytes([{1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}[n]])
        elif n < 256:
            head = bytes([0xC7, n])
        elif n < 65536:
            head = b"\xc8" + struct.pack(">H", n)
        else:
            head = b"\xc9" + struct.pack(">I", n & 0xFFFFFFFF)
        return head + struct.pack("b", code) + payload

    def scalar(self) -> bytes:
        return self.liar.draw.pick([b"\x07", b"\xc0", b"\xc3", b"\xcb" + struct.pack(">d", 0.5), b"\xd3" + b"\xff" * 8,
                                    b"\xc1", b"\xca\x00"])


def _itemsize(dtype: str) -> int:
    return {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int8": 1, "uint8": 1, "bool": 1}.get(dtype, 4)


def _ndarray(p: _Packer, draw) -> tuple:
    """(ext bytes, shape) of one ndarray whose shape, dtype and data may disagree."""
    liar = p.liar
    ndim = liar.pick([2, 2, 3, 4, 1, 0], [33, 40, 5])
    shape = [draw.pick([1, 2, 3, 4, 8]) for _ in range(min(ndim, 40))]
    dtype = liar.pick(draw.pick([DTYPES, ["float32", "float16", "bfloat16"]]), HOSTILE_DTYPES)
    count = 1
    for d in shape:
        count *= d
    nbytes = count * _itemsize(dtype)
    data = draw.bytes(min(nbytes, 4096))
    if liar.lying():
        data = data[: draw.int(0, len(data))] if draw.int(0, 1) else data + draw.bytes(draw.int(1, 9))
    dims = [p.uint(d) for d in shape]
    if liar.lying():
        dims[draw.int(0, len(dims) - 1) if dims else 0:] = [draw.pick([b"\xff", b"\xd3" + b"\xff" * 8,
                                                                      b"\xa1x", b"\xc0"])]
    body = p.array([p.array(dims), p.str(dtype), p.bin(data)])
    if liar.lying():
        body = p.array([p.array(dims), p.str(dtype)])
    return p.ext(liar.pick([1], [3, 2, -1, 0]), body), shape, dtype


def _chunked(p: _Packer, draw) -> bytes:
    liar = p.liar
    dtype = liar.pick(["float32", "float16"], HOSTILE_DTYPES)
    shape = [draw.pick([4, 8, 16]), draw.pick([2, 4, 8])]
    total = shape[0] * shape[1]
    cuts = sorted({0, total, *[draw.int(0, total) for _ in range(draw.int(0, 3))]})
    chunks = []
    for i, (a, b) in enumerate(zip(cuts, cuts[1:])):
        n = liar.int(b - a, 16)
        data = draw.bytes(min(n, 4096) * _itemsize(dtype))
        cdtype = liar.pick([dtype], ["float64", "int8", "bfloat16"])
        body = p.array([p.array([p.uint(min(n, 4096))]), p.str(cdtype), p.bin(data)])
        chunks.append((liar.pick([str(i)], ["-1", "x", "99999999999999999999", str(i + 1), ""]), p.ext(1, body)))
    fields = [("__msgpack_chunked_array__", b"\xc3"), ("shape", p.array([p.uint(d) for d in shape])),
              ("chunks", p.map(chunks))]
    if liar.lying():
        del fields[draw.int(0, 2)]
    if liar.lying():
        fields.append(("shape", p.array([b"\xa1x"])))
    return p.map(fields)


def _tree(p: _Packer, draw, depth: int) -> bytes:
    liar = p.liar
    pairs = []
    for k in range(draw.int(1 if depth == 0 else 0, 4)):
        kind = draw.int(0, 9) if depth < 6 else draw.int(3, 9)
        if 3 <= kind <= 7 and draw.int(0, 3):
            key = draw.pick(LEAVES)
        else:
            key = draw.pick(KEYS) + ("" if draw.int(0, 2) else f"_{k}")
        if kind < 3:
            value = _tree(p, draw, depth + 1)
        elif kind < 7:
            value, _, _ = _ndarray(p, draw)
            if draw.int(0, 3) == 0:  # nnx: {"value": array}
                value = p.map([(draw.pick(["value", "raw_value"]), value)])
        elif kind == 7:
            value = _chunked(p, draw)
        elif kind == 8:
            value = p.array([p.scalar() for _ in range(draw.int(0, 3))])
        else:
            value = draw.pick([p.scalar(), p.str("adam"), p.ext(3, p.array([p.array([]), p.str("int32"),
                                                                              p.bin(b"\0" * 4)]))])
        pairs.append((key, value))
    return p.map(pairs)


def hostile_flax(draw) -> bytes:
    """A flax msgpack checkpoint, well-formed except for a few lies."""
    liar = _Liar(draw)
    p = _Packer(liar)
    blob = _tree(p, draw, 0)
    if liar.lying():  # nesting far deeper than any model
        n = draw.pick([70, 200, 5000])
        blob = b"\x81\xa1a" * n + blob
    if liar.lying():
        blob += draw.bytes(draw.int(1, 16))
    if liar.lying() and blob:
        blob = blob[: draw.int(0, len(blob) - 1)]
    return blob


#: The most bytes one file byte can become when loaded (bfloat16 -> float32 via uint32: 2 + 4 bytes per 2),
#: with numpy's temporaries.
WIDEN = 8.0
EDGES = U64_EDGES
