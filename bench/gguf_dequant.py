"""GGUF: dequantisation speed against the eigen-solve of the same tensor, and peak memory of a whole analysis.

1. Peak RSS: a LLaMA-7B-shaped GGUF (hidden 4096, MLP 11008, vocab 32000, ``--layers`` decoder layers; Q4_K
   matrices, Q6_K ``output``, F32 norms — llama.cpp's Q4_K_M mix), written by this script, analysed by
   ``hts.analyze`` in a fresh process (VmHWM: ``ru_maxrss`` would keep this process's pages from before exec),
   with each tensor's read + dequantisation time measured in another fresh process. Run first, while this
   process is small.
2. Dequantisation (LLaMA-7B shapes 4096×4096, 11008×4096, 32000×4096): per ggml type, the time to decode one
   tensor to float32 with hts's C++ kernel (``hts._core.dequantize_ggml``, 1 and ``--threads`` threads) and with
   the ``gguf`` package's numpy code (llama.cpp's Python reference), next to the time of
   ``hts.spectra.eigenvalues`` on a matrix of the same shape (``--threads`` threads). Goal: decoding ≤ 10 % of
   the eigen-solve. Blocks are random bytes with finite scales (the speed does not depend on the values).

    python bench/gguf_dequant.py [--quick] [--layers 2] [--threads 2] [--out bench/results/gguf.md]
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from _common import markdown_table, write_report  # noqa: E402

from _gguf_files import SCALE_OFFSETS  # noqa: E402

HIDDEN, MLP, VOCAB = 4096, 11008, 32000
TYPES = {"Q4_0": 2, "Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8, "Q2_K": 10, "Q3_K": 11, "Q4_K": 12, "Q5_K": 13,
         "Q6_K": 14}
SIZES = {"Q4_0": (32, 18), "Q4_1": (32, 20), "Q5_0": (32, 22), "Q5_1": (32, 24), "Q8_0": (32, 34),
         "Q2_K": (256, 84), "Q3_K": (256, 110), "Q4_K": (256, 144), "Q5_K": (256, 176), "Q6_K": (256, 210),
         "F32": (1, 4)}


def random_blocks(rng, type_name: str, count: int) -> np.ndarray:
    """``count`` values' worth of blocks (flat uint8), scales finite and small."""
    block, size = SIZES[type_name]
    blocks = rng.integers(0, 256, size=(count // block, size), dtype=np.uint8)
    for off in SCALE_OFFSETS[type_name]:
        blocks[:, off:off + 2] = rng.uniform(0.001, 0.02, size=blocks.shape[0]).astype(np.float16) \
            .view(np.uint8).reshape(-1, 2)
    return blocks.reshape(-1)


def centred_blocks(rng, type_name: str, count: int) -> np.ndarray:
    """Random blocks whose values have mean ~0, as real weights do (for the whole-file analysis: a matrix with
    a large mean has a rank-one spike that slows the eigen-solve several-fold and is not what GGUF files hold).
    Q4_K: every sub-block's 6-bit scale equals its 6-bit min (32 or 15) and dmin = 7.5·d, so
    d·sc·q - dmin·m = sc·d·(q - 7.5) for uniform q in 0..15. Q6_K is d·s·(q - 32): already nearly centred."""
    flat = random_blocks(rng, type_name, count)
    if type_name == "Q4_K":
        blocks = flat.reshape(-1, 144)
        blocks[:, 4:12] = 32
        blocks[:, 12:16] = 0xFF
        d = blocks[:, 0:2].copy().view(np.float16)
        blocks[:, 2:4] = (d.astype(np.float32) * 7.5).astype(np.float16).view(np.uint8).reshape(-1, 2)
    return flat


def _time(fn, reps: int = 3) -> float:
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def dequant_table(shapes, types, threads: int, numpy_shapes) -> list:
    import hts
    from hts._native import _core

    rng = np.random.default_rng(0)
    rows = []
    for shape in shapes:
        count = shape[0] * shape[1]
        eig = None
        for name in types:
            raw = random_blocks(rng, name, count)
            out = np.empty(count, np.float32)
            t1 = _time(lambda: _core.dequantize_ggml(TYPES[name], raw, out, 1))
            tn = _time(lambda: _core.dequantize_ggml(TYPES[name], raw, out, threads))
            if eig is None:  # once per shape, on a realistic (zero-mean, heavy-tailed) matrix of that shape
                w = (rng.standard_t(4, size=shape) * 0.02).astype(np.float32)
                t0 = time.perf_counter()
                hts.spectra.eigenvalues(w, threads=threads)
                eig = time.perf_counter() - t0
                del w
            tnp = float("nan")
            if shape in numpy_shapes:
                import warnings

                import gguf
                from gguf import quants

                qtype = gguf.GGMLQuantizationType[name]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    tnp = _time(lambda: quants.dequantize(raw.reshape(shape[0], -1), qtype), reps=1)
            rows.append([f"{shape[0]}×{shape[1]}", name, f"{raw.nbytes / 1e6:.0f}", f"{t1 * 1e3:.0f}",
                         f"{tn * 1e3:.0f}", "-" if tnp != tnp else f"{tnp * 1e3:.0f}", f"{eig:.2f}",
                         f"{100 * tn / eig:.1f} %", "-" if tnp != tnp else f"{100 * tnp / eig:.0f} %",
                         "-" if tnp != tnp else f"{tnp / tn:.0f}×"])
    return rows


def llama_tensors(n_layers: int) -> list:
    """(GGUF name, numpy shape, type) of a LLaMA-7B-shaped Q4_K_M-like file."""
    out = [("token_embd.weight", (VOCAB, HIDDEN), "Q4_K")]
    for i in range(n_layers):
        p = f"blk.{i}."
        out += [(p + "attn_norm.weight", (HIDDEN,), "F32")]
        out += [(p + f"attn_{x}.weight", (HIDDEN, HIDDEN), "Q4_K") for x in ("q", "k", "v", "output")]
        out += [(p + "ffn_norm.weight", (HIDDEN,), "F32"), (p + "ffn_gate.weight", (MLP, HIDDEN), "Q4_K"),
                (p + "ffn_up.weight", (MLP, HIDDEN), "Q4_K"), (p + "ffn_down.weight", (HIDDEN, MLP), "Q4_K")]
    out += [("output_norm.weight", (HIDDEN,), "F32"), ("output.weight", (VOCAB, HIDDEN), "Q6_K")]
    return out


def write_llama(path: str, n_layers: int) -> None:
    """A GGUF v3 file, written here field by field (streaming: one row block in memory at a time)."""
    def s(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("<Q", len(raw)) + raw

    tensors = llama_tensors(n_layers)
    infos, offset, sizes = [], 0, []
    for name, shape, kind in tensors:
        block, size = SIZES[kind]
        nbytes = int(np.prod(shape)) // block * size
        dims = tuple(reversed(shape))
        infos.append(s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
                     + struct.pack("<IQ", TYPES.get(kind, 0), offset))
        sizes.append(nbytes)
        offset += -(-nbytes // 32) * 32
    head = (b"GGUF" + struct.pack("<IQQ", 3, len(tensors), 1) + s("general.architecture") + struct.pack("<I", 8)
            + s("llama") + b"".join(infos))
    head += b"\0" * (-len(head) % 32)
    rng = np.random.default_rng(1)
    with open(path, "wb") as f:
        f.write(head)
        for (name, shape, kind), nbytes in zip(tensors, sizes):
            if kind == "F32":
                f.write(np.ones(shape, np.float32).tobytes())
            else:
                rows_per = max(1, (1 << 22) // shape[-1])
                for r0 in range(0, shape[0], rows_per):
                    f.write(centred_blocks(rng, kind, min(rows_per, shape[0] - r0) * shape[-1]).tobytes())
            f.write(b"\0" * (-nbytes % 32))


ANALYZE = r"""
import json, resource, sys, time
import hts
t0 = time.perf_counter()
a = hts.analyze(sys.argv[1], threads=int(sys.argv[2]))
total = time.perf_counter() - t0
rows = [dict(key=r["key"], name=r["longname"], shape=r["shape"], quant=r["quant"], time=r["time"],
             alpha=r["alpha"]) for r in a.rows if r["status"] != "skipped"]
hwm = [int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmHWM:")]
print(json.dumps({"total": total, "peak_rss": hwm[0] if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "rows": rows, "torch": "torch" in sys.modules}))
"""

LOAD = r"""
import json, sys, time
import hts
out = {}
for t in hts.open(sys.argv[1]):
    if t.skip_reason:
        continue
    t0 = time.perf_counter()
    w = t.load()
    out[t.key] = time.perf_counter() - t0
    del w
print(json.dumps(out))
"""


def child(code: str, *args: str, threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4096×4096 only in part 1, no numpy above it")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "gguf.md"))
    args = ap.parse_args()
    parts: list = []
    if not args.skip_rss:
        with tempfile.TemporaryDirectory(prefix="hts-gguf-") as folder:
            path = os.path.join(folder, "llama-q4_k_m.gguf")
            t0 = time.perf_counter()
            write_llama(path, args.layers)
            print(f"generated {path} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            size = os.path.getsize(path)
            loads = child(LOAD, path, threads=args.threads)
            result = child(ANALYZE, path, str(args.threads), threads=args.threads)
        peak = result["peak_rss"]
        largest = max(int(np.prod(s)) for _, s, _ in llama_tensors(args.layers))
        bound = largest * 4 + HIDDEN * HIDDEN * 8
        table = [[r["key"], r["name"], r["shape"], r["quant"], f"{loads[r['key']]:.2f}", f"{r['time']:.2f}",
                  f"{100 * loads[r['key']] / r['time']:.1f} %", f"{r['alpha']:.3f}"] for r in result["rows"]]
        parts += [
            "### 1. A LLaMA-7B-shaped Q4_K_M GGUF, analysed whole\n",
            f"File: {args.layers} decoder layers + token_embd (Q4_K) + output (Q6_K), {size / 1e9:.2f} GB; threads "
            f"{args.threads}; torch imported: {result['torch']}.\n",
            f"**Peak RSS of the analysing process (VmHWM): {peak / 1e9:.2f} GB**; the largest tensor in float32 is "
            f"{largest * 4 / 1e9:.2f} GB and the Gram matrix of a 4096-wide matrix {HIDDEN * HIDDEN * 8 / 1e9:.2f} "
            f"GB (sum {bound / 1e9:.2f} GB). Total analysis {result['total']:.1f} s.\n",
            markdown_table(["GGUF tensor", "name", "shape", "type", "read + dequantise s (fresh process)",
                            "hts analyze row s (read + eig + fit)", "read+dequant / row", "alpha"], table),
        ]
    shapes = [(HIDDEN, HIDDEN)] if args.quick else [(HIDDEN, HIDDEN), (MLP, HIDDEN), (VOCAB, HIDDEN)]
    numpy_shapes = {(HIDDEN, HIDDEN)} if args.quick else {(HIDDEN, HIDDEN), (MLP, HIDDEN)}
    rows = dequant_table(shapes, list(TYPES), args.threads, numpy_shapes)
    parts += [
        "\n### 2. Dequantisation vs the eigen-solve of the same tensor\n",
        markdown_table(["shape", "type", "stored MB", "hts C++ 1 thread ms", f"hts C++ {args.threads} threads ms",
                        "gguf numpy ms", f"hts eigen-solve s ({args.threads} threads)", "hts decode / eigen",
                        "numpy decode / eigen", "numpy / hts"], rows),
        "\nDecoding is the best of 3 runs (numpy: 1 run) of one whole tensor from bytes in memory to float32; "
        "the eigen-solve is `hts.spectra.eigenvalues` (Gram + symmetric eigenvalues) of a zero-mean Student-t "
        "matrix of the same shape (random blocks decode to a matrix with a non-zero mean, whose rank-one spike "
        "made the eigen-solve about 7× slower in a trial, which would flatter the ratio). Goal: decode ≤ 10 % "
        "of the eigen-solve.\n",
    ]
    write_report("GGUF: dequantisation speed and peak memory", args.quick, parts, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
