"""A structure-aware GGUF fuzzer: headers whose every field may lie (shared by tests and bench/fuzz_gguf.py).

``hostile_gguf(source)`` builds a file field by field from a ``source`` of choices (``HypothesisSource`` in the
tests, ``RandomSource`` for the 100k-input bench): well-formed except for a few fields chosen to lie, where
loaders overflow (counts, string and array lengths, dims, type ids, offsets, alignment, truncation).
``check(path)`` opens it and loads every tensor, and fails unless that either works or raises
``hts.ModelFileError`` naming the file.
"""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import strategies as st

import hts

U64_EDGES = [0, 1, 2**31 - 1, 2**32 - 1, 2**32, 2**62, 2**63 - 1, 2**64 - 1]
PLAUSIBLE_TYPES = [0, 1, 30, 28, 2, 3, 6, 7, 8, 10, 11, 12, 13, 14, 20, 23, 16, 24, 26, 9, 15]
NAMES = ["blk.{i}.attn_q.weight", "token_embd.weight", "blk.{i}.ffn_up_exps.weight", "output.weight", "x{i}"]


class HypothesisSource:
    """Choices drawn by hypothesis (so failures shrink)."""

    def __init__(self, draw) -> None:
        self._draw = draw

    def int(self, lo: int, hi: int) -> int:
        return self._draw(st.integers(lo, hi))

    def pick(self, options: list):
        return self._draw(st.sampled_from(options))

    def bytes(self, n: int) -> bytes:
        return self._draw(st.binary(min_size=n, max_size=n))


class RandomSource:
    """Choices from a seeded ``random.Random`` (fast, for long runs)."""

    def __init__(self, rng) -> None:
        self._rng = rng

    def int(self, lo: int, hi: int) -> int:
        return self._rng.randint(lo, hi)

    def pick(self, options: list):
        return self._rng.choice(options)

    def bytes(self, n: int) -> bytes:
        return self._rng.randbytes(n)


class _Liar:
    """Hands out field values: plausible ones, except at the few fields chosen to lie."""

    def __init__(self, draw) -> None:
        self.draw = draw
        self.lies = {draw.int(0, 60) for _ in range(draw.int(0, 3))}
        self.field = -1

    def lying(self) -> bool:
        self.field += 1
        return self.field in self.lies

    def int(self, plausible: int, bits: int = 64) -> int:
        if not self.lying():
            return plausible
        if self.draw.int(0, 1):
            return self.draw.pick([e for e in U64_EDGES if e < 2**bits])
        return self.draw.int(0, 2**bits - 1)

    def pick(self, plausible: list, hostile: list):
        return self.draw.pick(hostile if self.lying() else plausible)


def hostile_gguf(draw) -> bytes:
    """A GGUF file, well-formed except for a few lies (hypothesis chooses which fields lie, and how)."""
    from hts.adapters.gguf_format import GGML_TYPES

    liar = _Liar(draw)
    version = liar.pick([3, 2, 1], [0, 4, 2**24, 2**32 - 1])
    o = ">" if draw.int(0, 5) == 5 else "<"
    cnt = "I" if version == 1 else "Q"
    cw = 32 if version == 1 else 64

    def s(text: bytes) -> bytes:
        return struct.pack(o + cnt, liar.int(len(text), cw)) + text

    kvs = [s(b"general.architecture") + struct.pack(o + "I", 8) + s(draw.pick([b"llama", b"gpt2"]))]
    alignment = 32
    if draw.int(0, 3) == 3:
        alignment = liar.pick([64, 16, 32], [1, 3, 0, 2**31])
        kvs.append(s(b"general.alignment") + struct.pack(o + "I", liar.pick([4], [5, 6, 10, 99]))
                   + struct.pack(o + "I", alignment))
        alignment = alignment if 0 < alignment <= 4096 and not alignment & (alignment - 1) else 32
    for k in range(draw.int(0, 3)):
        vtype = draw.pick([8, 4, 9, 6, 7, 10, 12, 0])
        key = s(liar.pick([b"general.name", b"a.b"], [b"\xff\xfe", b"", b"general.architecture"])
                + bytes([48 + k]))
        if vtype == 8:
            value = s(liar.pick([b"tiny"], [b"\xc3", b""]))
        elif vtype == 9:
            item = liar.pick([4, 8, 9, 11], [99, 2**32 - 1])
            n = draw.int(0, 4)
            body = b"".join(s(b"ab") if item == 8 else struct.pack(o + "I", 4) + struct.pack(o + cnt, 0)
                            if item == 9 else struct.pack(o + "q", 1)[: 4 if item == 4 else 8] for _ in range(n))
            value = struct.pack(o + "I", item) + struct.pack(o + cnt, liar.int(n, cw)) + body
        else:
            width = {4: 4, 6: 4, 7: 1, 10: 8, 12: 8, 0: 1}[vtype]
            value = draw.bytes(width)
            vtype = liar.pick([vtype], [13, 2**32 - 1])
        kvs.append(key + struct.pack(o + "I", vtype) + value)
    infos = []
    n_tensors = draw.int(1, 3)
    offset = 0
    for i in range(n_tensors):
        type_id = liar.pick(PLAUSIBLE_TYPES, [4, 31, 99, 2**32 - 1])
        n_dims = liar.pick([2, 3, 1, 4], [0, 5, 2**32 - 1])
        block = GGML_TYPES.get(type_id, ("", 32, 0))[1]
        dims = [draw.pick([block, 2 * block, 256 if block < 256 else block]) if d == 0
                else draw.pick([2, 3, 1, 4]) for d in range(min(n_dims, 5))]
        dims = [liar.int(d, cw) for d in dims]
        name = liar.pick(NAMES, ["", "\xff"]).format(i=i).encode("utf-8", "surrogateescape")
        infos.append(s(name) + struct.pack(o + "I", n_dims) + b"".join(struct.pack(o + cnt, d) for d in dims)
                     + struct.pack(o + "I", type_id) + struct.pack(o + "Q", liar.int(offset)))
        count = int(np.prod(dims, dtype=object)) if dims else 0
        size = count // block * GGML_TYPES[type_id][2] if type_id in GGML_TYPES and block else 0
        offset += -(-min(size, 2**20) // alignment) * alignment
    head = (b"GGUF" + struct.pack(o + "I", version) + struct.pack(o + cnt, liar.int(n_tensors, cw))
            + struct.pack(o + cnt, liar.int(len(kvs), cw)) + b"".join(kvs) + b"".join(infos))
    head += b"\0" * (-len(head) % alignment)
    seed = draw.int(0, 2**32 - 1)
    data = np.random.default_rng(seed).integers(0, 256, size=min(offset, 2**20), dtype=np.uint8).tobytes()
    blob = head + data
    if liar.lying() and blob:  # truncated anywhere
        blob = blob[: draw.int(0, len(blob) - 1)]
    return blob


def check(path) -> None:
    """Open and load everything: only success or a ModelFileError naming the file is allowed."""
    try:
        tensors = list(hts.open(path))
    except hts.ModelFileError as err:
        assert str(path) in str(err)
        return
    for t in tensors:
        try:
            w = t.load()
        except hts.ModelFileError as err:
            assert str(path) in str(err)
            continue
        assert isinstance(w, np.ndarray) and w.shape == t.shape


#: The most float32 bytes one file byte can decode to (Q1_0: 128 values in 18 bytes), and fixed slack.
WIDEN = 4 * 128 / 18
SLACK = 4 * 2**20


def check_bounded(path, *, analyze: bool = False) -> str:
    """``check`` plus a bound on Python allocation (tracemalloc must be running): at most the float32 values
    the file's bytes could decode to, plus ``SLACK``. Optionally ``hts.analyze`` too. Returns "read" or
    "refused"."""
    import os
    import tracemalloc

    size = os.path.getsize(path)
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    outcome = "read"
    try:
        tensors = list(hts.open(path))
        for t in tensors:
            try:
                w = t.load()
                assert isinstance(w, np.ndarray) and w.shape == t.shape
                del w
            except hts.ModelFileError as err:
                assert str(path) in str(err)
        if analyze:
            hts.analyze(path)
    except hts.ModelFileError as err:
        assert str(path) in str(err)
        outcome = "refused"
    peak = tracemalloc.get_traced_memory()[1] - before
    assert peak <= WIDEN * size + SLACK, f"allocated {peak} bytes for a {size}-byte file"
    return outcome
