"""Peak memory and time per layer of ``hts.analyze`` on a sharded BF16 checkpoint with LLaMA-7B layer shapes.

Generates (once, in a folder you can keep with ``--dir``) a Hugging Face style sharded safetensors checkpoint:
hidden 4096, MLP 11008, vocab 32000, ``--layers`` decoder layers (default 2), untied ``lm_head``, BF16 — each
decoder layer has q/k/v/o (4096×4096), gate/up (11008×4096), down (4096×11008) and two RMSNorm vectors. Then, in
a fresh process that imports only numpy and hts (no torch), runs ``hts.analyze(folder)`` and reports its peak
RSS (``ru_maxrss``) and each layer's time, next to the kernel floor for the same shapes: ``hts.spectra.eigenvalues``
on an in-memory float32 matrix (no file reading) and scipy's ``eigh(WᵀW, driver="evd")`` (LAPACK) — both with the
same threads.

    python bench/llama_checkpoint.py [--layers 2] [--threads 2] [--dir /tmp/llama-bf16] [--out bench/results/llama.md]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import blas_threads, markdown_table, write_report  # noqa: E402

HIDDEN, MLP, VOCAB = 4096, 11008, 32000
GOAL_BYTES = 1.5e9


def layer_shapes(n_layers: int) -> dict:
    shapes = {"model.embed_tokens.weight": (VOCAB, HIDDEN)}
    for i in range(n_layers):
        p = f"model.layers.{i}."
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            shapes[p + f"self_attn.{name}.weight"] = (HIDDEN, HIDDEN)
        shapes[p + "mlp.gate_proj.weight"] = (MLP, HIDDEN)
        shapes[p + "mlp.up_proj.weight"] = (MLP, HIDDEN)
        shapes[p + "mlp.down_proj.weight"] = (HIDDEN, MLP)
        shapes[p + "input_layernorm.weight"] = (HIDDEN,)
        shapes[p + "post_attention_layernorm.weight"] = (HIDDEN,)
    shapes["model.norm.weight"] = (HIDDEN,)
    shapes["lm_head.weight"] = (VOCAB, HIDDEN)
    return shapes


def _bf16(values: np.ndarray) -> bytes:
    bits = values.astype(np.float32).view(np.uint32)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16).tobytes()


def generate(folder: str, n_layers: int, shard_bytes: int = 400 * 10**6) -> None:
    """Write the sharded checkpoint (heavy-ish tails: Student-t with 4 degrees of freedom, scaled)."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    shards: list[list[str]] = [[]]
    size = 0
    shapes = layer_shapes(n_layers)
    for name, shape in shapes.items():
        nbytes = int(np.prod(shape)) * 2
        if size and size + nbytes > shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(name)
        size += nbytes
    weight_map = {}
    for s, names in enumerate(shards):
        fname = f"model-{s + 1:05d}-of-{len(shards):05d}.safetensors"
        header, offset = {"__metadata__": {"format": "pt"}}, 0
        for name in names:
            nbytes = int(np.prod(shapes[name])) * 2
            header[name] = {"dtype": "BF16", "shape": list(shapes[name]), "data_offsets": [offset, offset + nbytes]}
            offset += nbytes
        text = json.dumps(header).encode()
        text += b" " * (-len(text) % 8)
        with open(os.path.join(folder, fname), "wb") as f:
            f.write(len(text).to_bytes(8, "little") + text)
            for name in names:
                shape = shapes[name]
                if len(shape) == 1:
                    f.write(_bf16(np.ones(shape, np.float32)))
                    continue
                rows_per = max(1, (1 << 24) // shape[1])
                for r0 in range(0, shape[0], rows_per):
                    block = rng.standard_t(4, size=(min(rows_per, shape[0] - r0), shape[1])).astype(np.float32)
                    f.write(_bf16(block * np.float32(0.02)))
        weight_map.update({n: fname for n in names})
    total = sum(int(np.prod(s)) * 2 for s in shapes.values())
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump({"model_type": "llama", "hidden_size": HIDDEN, "intermediate_size": MLP, "vocab_size": VOCAB,
                   "num_hidden_layers": n_layers, "num_attention_heads": 32, "tie_word_embeddings": False}, f)


CHILD = r"""
import json, resource, sys, time
import hts
t0 = time.perf_counter()
stamps = []
a = hts.analyze(sys.argv[1], threads=int(sys.argv[2]),
                progress=lambda done, total, name: stamps.append((name, time.perf_counter())))
total = time.perf_counter() - t0
rows = [dict(key=r["key"], shape=r["shape"], dtype=r["dtype"], time=r["time"], alpha=r["alpha"], status=r["status"])
        for r in a.rows if r["status"] != "skipped"]
print(json.dumps({"total": total, "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "rows": rows, "torch_imported": "torch" in sys.modules}))
"""


def measure(folder: str, threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, "-c", CHILD, folder, str(threads)], capture_output=True, text=True,
                         env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def floors(shapes: list[tuple], threads: int) -> dict:
    """Per shape: hts kernel on an in-memory float32 matrix, and scipy eigh(evd) of WᵀW in float64."""
    import scipy.linalg

    import hts

    rng = np.random.default_rng(1)
    out = {}
    for shape in shapes:
        w = (rng.standard_t(4, size=shape) * 0.02).astype(np.float32)
        t0 = time.perf_counter()
        hts.spectra.eigenvalues(w, threads=threads)
        kernel = time.perf_counter() - t0
        with blas_threads(threads):
            t0 = time.perf_counter()
            w64 = w.astype(np.float64)
            g = w64.T @ w64 if shape[0] >= shape[1] else w64 @ w64.T
            scipy.linalg.eigh(g, driver="evd", eigvals_only=True, overwrite_a=True, check_finite=False)
            lapack = time.perf_counter() - t0
        out[shape] = (kernel, lapack)
        del w, w64, g
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dir", help="checkpoint folder (kept; generated if missing)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "llama.md"))
    ap.add_argument("--no-floor", action="store_true", help="skip the kernel-floor timings")
    args = ap.parse_args(argv)
    tmp = None
    folder = args.dir
    if folder is None:
        tmp = tempfile.TemporaryDirectory(prefix="hts-llama-")
        folder = tmp.name
    if not os.path.isfile(os.path.join(folder, "model.safetensors.index.json")):
        t0 = time.perf_counter()
        generate(folder, args.layers)
        print(f"generated {folder} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
    load_before = os.getloadavg()[0]
    result = measure(folder, args.threads)
    shapes = sorted({tuple(int(x) for x in r["shape"].split("x")) for r in result["rows"]})
    floor = {} if args.no_floor else floors(shapes, args.threads)
    rows = []
    for r in result["rows"]:
        shape = tuple(int(x) for x in r["shape"].split("x"))
        k, lap = floor.get(shape, (float("nan"), float("nan")))
        rows.append([r["key"], r["shape"], r["dtype"], f"{r['time']:.2f}", f"{k:.2f}", f"{lap:.2f}",
                     f"{r['time'] / k:.2f}" if k == k else "-", f"{r['alpha']:.3f}"])
    peak = result["peak_rss"]
    largest = max(int(np.prod(s)) for s in shapes)
    parts = [
        f"Checkpoint: {args.layers} LLaMA-7B decoder layers + embeddings + lm_head, BF16, "
        f"{len([f for f in os.listdir(folder) if f.endswith('.safetensors')])} shards, {size / 1e9:.2f} GB on disk; "
        f"threads {args.threads}; torch imported by the analysis: {result['torch_imported']}; 1-min load average "
        f"{load_before:.1f} before the analysis and {os.getloadavg()[0]:.1f} at the end (times are only comparable "
        "when both are near 0: other work on these cores stretches them).\n",
        f"**Peak RSS of the analysing process: {peak / 1e9:.2f} GB** (goal ≤ {GOAL_BYTES / 1e9:.1f} GB: "
        f"{'met' if peak <= GOAL_BYTES else 'NOT met'}); the largest tensor in float32 is {largest * 4 / 1e9:.2f} GB and its "
        f"Gram matrix {HIDDEN * HIDDEN * 8 / 1e9:.2f} GB. Total analyse time {result['total']:.1f} s for "
        f"{len(result['rows'])} matrices.\n",
        markdown_table(["tensor", "shape", "stored", "hts analyze s (read + eig + fit)", "hts kernel floor s",
                        "scipy eigh(evd) s", "analyze / kernel", "alpha"], rows),
        "\nkernel floor: `hts.spectra.eigenvalues` on the same shape already in memory as float32 (no file "
        "reading, no fit); scipy: `eigh(WᵀW, driver='evd')` in float64 with the same BLAS threads, Gram included.",
    ]
    write_report("LLaMA-7B-shaped sharded BF16 checkpoint", False, parts, args.out)
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump({"peak_rss": peak, "total": result["total"], "size_on_disk": size, "rows": result["rows"],
                   "floor": {"x".join(map(str, k)): v for k, v in floor.items()}}, f, indent=1)
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
