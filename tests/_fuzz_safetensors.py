"""Generated hostile safetensors files and the check each must pass (tests/test_fuzz_safetensors.py runs a few
thousand in CI, bench/fuzz_safetensors.py hundreds of thousands).

Inputs are mutations of small valid files (float and integer dtypes, BF16/FP8, empty and 0-d tensors,
metadata): byte flips, truncations, lying header lengths, header entries with hostile values (huge or negative
shapes and offsets, wrong types, overlaps, 65 dimensions), duplicate keys, deep JSON nesting, invalid UTF-8,
splices of two files and random JSON. The check: reading the header and every tensor, and ``hts.analyze`` on
the file, either succeed or raise ``hts.ModelFileError``; nothing else, no hang, and no Python allocation
beyond a small multiple of the file's size (FP8 widens 4x to float32) plus a fixed slack.
"""

from __future__ import annotations

import json
import os
import random
import struct
import time
import tracemalloc

import _st_writer as writer
import numpy as np

import hts
from hts.adapters.safetensors_file import read_header

#: Allowed Python allocation: WIDEN x file size + SLACK bytes (FP8 -> float32 is 4x; chunk buffers, the
#: analysis' small arrays and rows fit the slack).
WIDEN = 4
SLACK = 4 * 2**20

HOSTILE_INTS = [-1, 0, 1, 7, 8, 2**31 - 1, 2**31, 2**32, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 10**30, -(2**63)]
HOSTILE_VALUES = HOSTILE_INTS + [1.5, float("nan"), "1", "", None, True, False, [], {}, [1, 2, 3], [-1],
                                 [2**62, 2**62], [0], [1] * 65, "F32", "BF16", "F8_E4M3", "C64", "BOOL", "??"]
HOSTILE_SHAPES = [[], [0], [0, 5], [2**32, 2**32], [2**62, 4], [3, -1], [1] * 65, [1.0, 2], ["2"], [10**20, 0],
                  [4, 4], [2, 2, 2, 2], [1, 100000]]
DTYPES = ["F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2", "I8", "U8", "BOOL", "C64", "F8_E8M0", "XYZ"]


def seeds() -> list[bytes]:
    """Small valid files the mutations start from."""
    rng = np.random.default_rng(0)
    bf16 = rng.standard_normal((12, 10)).astype(np.float32).view(np.uint32) >> 16
    out = []
    for tensors, metadata in [
        ({"fc.weight": rng.standard_normal((24, 12)).astype(np.float32)}, None),
        ({"a.weight": rng.standard_normal((16, 9)), "a.bias": np.zeros(16),
          "b.weight": rng.standard_normal((20, 10)).astype(np.float16)}, {"format": "pt"}),
        ({"conv.weight": rng.standard_normal((8, 4, 3, 3)).astype(np.float32),
          "emb.weight": ("BF16", bf16.astype(np.uint16).tobytes(), [12, 10]),
          "q.weight": ("F8_E4M3", rng.integers(0, 256, 90, dtype=np.uint8).tobytes(), [10, 9])}, None),
        ({"ids": np.arange(10, dtype=np.int64), "mask": np.ones(4, bool),
          "empty.weight": np.zeros((0, 8), np.float32), "scalar": np.float32(3.0).reshape(())}, {"k": "v"}),
    ]:
        header, data = writer.header_and_data(tensors, metadata=metadata)
        out.append(writer.encode(header, data))
    return out


def _split(blob: bytes) -> tuple[dict | None, bytes]:
    try:
        (n,) = struct.unpack("<Q", blob[:8])
        return json.loads(blob[8:8 + n]), blob[8 + n:]
    except (ValueError, struct.error, UnicodeDecodeError):
        return None, blob[8:]


def _with_header(header_text: bytes, data: bytes) -> bytes:
    return struct.pack("<Q", len(header_text)) + header_text + data


def _random_json(rng: random.Random, depth: int = 0):
    r = rng.random()
    if depth > 3 or r < 0.4:
        return rng.choice(HOSTILE_VALUES)
    if r < 0.7:
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(["dtype", "shape", "data_offsets", "__metadata__", "w", ""]): _random_json(rng, depth + 1)
            for _ in range(rng.randint(0, 4))}


def _mutate_entry(rng: random.Random, header: dict) -> None:
    names = [k for k in header if k != "__metadata__"] or ["x.weight"]
    name = rng.choice(names + ["new.weight"])
    entry = header.get(name)
    if not isinstance(entry, dict):
        entry = {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 64]}
    entry = dict(entry)
    field = rng.choice(["dtype", "shape", "data_offsets", "drop", "whole"])
    if field == "dtype":
        entry["dtype"] = rng.choice(DTYPES + HOSTILE_VALUES)
    elif field == "shape":
        entry["shape"] = rng.choice(HOSTILE_SHAPES + HOSTILE_VALUES)
    elif field == "data_offsets":
        a, b = rng.choice(HOSTILE_INTS), rng.choice(HOSTILE_INTS)
        entry["data_offsets"] = rng.choice([[a, b], [min(a, b), max(a, b)], [0, 0], [a], [a, b, 0], a])
    elif field == "drop":
        entry.pop(rng.choice(["dtype", "shape", "data_offsets"]), None)
    else:
        entry = rng.choice(HOSTILE_VALUES)
    header[name] = entry
    if rng.random() < 0.2:
        header["__metadata__"] = rng.choice([{"a": "b"}, {"a": 1}, [], "x", None, {"": {"deep": []}}])


def mutate(rng: random.Random, corpus: list[bytes]) -> bytes:
    """One hostile file made from the corpus."""
    blob = rng.choice(corpus)
    kind = rng.randrange(10)
    if kind == 0:  # byte flips anywhere
        b = bytearray(blob)
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b)
    if kind == 1:  # truncation
        return blob[:rng.randrange(len(blob) + 1)]
    if kind == 2:  # a lying header length
        n = rng.choice(HOSTILE_INTS[1:11] + [len(blob) - 8, len(blob) - 9, len(blob), 100_000_001, 2**64 - 1])
        return struct.pack("<Q", n % 2**64) + blob[8:]
    header, data = _split(blob)
    if header is None:
        return blob
    if kind in (3, 4, 5):  # hostile header entries
        for _ in range(rng.randint(1, 3)):
            _mutate_entry(rng, header)
        text = json.dumps(header).encode()
    elif kind == 6:  # duplicate keys
        text = json.dumps(header).encode()
        first = json.dumps(next(iter(header)))
        text = text[:-1] + f', {first}: {{"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}}}'.encode()
    elif kind == 7:  # deep nesting, invalid UTF-8, NaN literals, random JSON
        text = rng.choice([b"[" * 100_000 + b"]" * 100_000, b'{"a\xff\xfe": 1}', b'{"w": NaN}',
                           b'{"w": {"dtype": "F32", "shape": [Infinity], "data_offsets": [0, 4]}}',
                           json.dumps(_random_json(rng)).encode(), b"", b"{", b"null"])
    elif kind == 8:  # splice: this header, another file's data (or a resized buffer)
        text = json.dumps(header).encode()
        data = rng.choice([rng.choice(corpus)[8:], data[: len(data) // 2], data * 2, b""])
    else:  # tensors made to overlap or reordered
        for name in [k for k in header if k != "__metadata__"]:
            entry = header[name]
            if isinstance(entry, dict) and isinstance(entry.get("data_offsets"), list) and rng.random() < 0.5:
                lo, hi = entry["data_offsets"]
                shift = rng.randint(-8, 8)
                entry["data_offsets"] = [lo + shift, hi + shift]
        text = json.dumps(header).encode()
    return _with_header(text, data)


def check(path: str, blob: bytes, *, analyze: bool = True, time_limit: float = 5.0) -> str:
    """Write ``blob`` to ``path`` and read it every way; returns "read" or "refused", raises AssertionError
    (with the input described) on anything else. tracemalloc must be running."""
    with open(path, "wb") as f:
        f.write(blob)
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    outcome = "read"
    try:
        h = read_header(path)
        for name in h.tensors:
            try:
                h.load(name)
            except hts.ModelFileError:
                outcome = "refused"
        if analyze:
            hts.analyze(path, threads=1)
    except hts.ModelFileError:
        outcome = "refused"
    except Exception as err:  # noqa: BLE001 - the point of the check
        raise AssertionError(f"{type(err).__name__}: {err} for input {blob[:300]!r}... ({len(blob)} bytes)") from err
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] - base
    assert elapsed < time_limit, f"{elapsed:.2f} s on input {blob[:200]!r}"
    assert peak <= WIDEN * len(blob) + SLACK, f"allocated {peak} bytes for a {len(blob)}-byte file: {blob[:200]!r}"
    return outcome


def run(count: int, seed: int, path: str, *, analyze_every: int = 1) -> dict:
    """``count`` generated inputs through ``check``; returns counts of outcomes and the slowest input's time."""
    rng = random.Random(seed)
    corpus = seeds()
    counts = {"read": 0, "refused": 0}
    slowest = 0.0
    tracemalloc.start()
    try:
        for i in range(count):
            blob = mutate(rng, corpus)
            t0 = time.perf_counter()
            counts[check(path, blob, analyze=i % analyze_every == 0)] += 1
            slowest = max(slowest, time.perf_counter() - t0)
    finally:
        tracemalloc.stop()
        if os.path.exists(path):
            os.unlink(path)
    return {**counts, "inputs": count, "slowest_s": slowest}
