"""A whole LLaMA-7B-shaped model (32 decoder blocks + embeddings + lm_head, 226 matrices) through ``hts.analyze``.

    python bench/llama_7b.py [--quick] [--blocks 0,1] [--precisions float64,float32] [--threads 1,2]
                             [--ww] [--out bench/results/llama_7b.md]

The checkpoint is a Hugging Face style sharded BF16 safetensors folder whose weights have realistic spectra
(heavy-tailed singular values, near-low-rank q/k: the recipe is in ``bench/llama_spectra.py``). It is generated
once into the temporary folder ``hts-bench-llama7b-<blocks>`` (≈ 13.5 GB for the full model, 0.9 GB per block
plus 0.5 GB) and reused by later runs.

Each measurement runs ``hts.analyze(folder)`` in a fresh process that imports numpy and hts only, and reports its
time, peak RSS (``ru_maxrss``) and every layer's ``time``, ``alpha`` and whether the float64 rank refine fired.
The floor per shape is LAPACK on one thread: the Gram product (BLAS ``syrk`` via numpy) + ``eigh(driver="evd")``
in float64 (scipy), timed once per shape; ÷ 2 is the 2-thread floor.

``--quick`` analyses blocks 0 and 1 + embeddings + lm_head only (block 0 has the near rank-deficient q/k) and
**extrapolates** the whole model as embeddings + lm_head + block 0 + 31 × block 1 — labelled as such in the
report. This machine has 2 shared cores: times are noisy; the load average is printed with each run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import blas_threads, machine, markdown_table  # noqa: E402
from llama_checkpoint import HIDDEN, MLP, VOCAB, _bf16  # noqa: E402

import llama_spectra  # noqa: E402

N_BLOCKS = 32
GOAL_BYTES = 1.5e9


def layer_shapes(blocks: list[int]) -> dict:
    shapes = {"model.embed_tokens.weight": (VOCAB, HIDDEN)}
    for i in blocks:
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


def generate(folder: str, blocks: list[int], shard_bytes: int = 2 * 10**9) -> float:
    """Writes the checkpoint (one shard at a time, one tensor in memory at a time; a complete shard left by an
    interrupted earlier run is kept); returns the seconds."""
    t0 = time.perf_counter()
    os.makedirs(folder, exist_ok=True)
    shapes = layer_shapes(blocks)
    shards: list[list[str]] = [[]]
    size = 0
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
        done = os.path.join(folder, fname)
        if os.path.isfile(done) and os.path.getsize(done) == 8 + len(text) + offset:
            weight_map.update({n: fname for n in names})  # written by an interrupted earlier run: kept
            continue
        tmp = os.path.join(folder, fname + ".part")
        with open(tmp, "wb") as f:
            f.write(len(text).to_bytes(8, "little") + text)
            for name in names:
                shape = shapes[name]
                if len(shape) == 1:
                    f.write(_bf16(np.ones(shape, np.float32)))
                else:
                    f.write(_bf16(llama_spectra.weight(name, shape)))
        os.replace(tmp, os.path.join(folder, fname))
        weight_map.update({n: fname for n in names})
    total = sum(int(np.prod(s)) * 2 for s in shapes.values())
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump({"model_type": "llama", "hidden_size": HIDDEN, "intermediate_size": MLP, "vocab_size": VOCAB,
                   "num_hidden_layers": N_BLOCKS, "num_attention_heads": 32, "tie_word_embeddings": False}, f)
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:  # last: marks a complete folder
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f)
    return time.perf_counter() - t0


def checkpoint(blocks: list[int]) -> tuple[str, float]:
    tag = "all" if blocks == list(range(N_BLOCKS)) else "-".join(map(str, blocks))
    folder = os.path.join(tempfile.gettempdir(), f"hts-bench-llama7b-{tag}")
    if os.path.isfile(os.path.join(folder, "model.safetensors.index.json")):
        return folder, 0.0
    return folder, generate(folder, blocks)


CHILD = r"""
import json, resource, sys, time
import hts
t0 = time.perf_counter()
a = hts.analyze(sys.argv[1], threads=int(sys.argv[2]), precision=sys.argv[3])
total = time.perf_counter() - t0
rows = [dict(key=r["key"], shape=r["shape"], time=r["time"], alpha=r["alpha"], status=r["status"],
             rank_loss=r.get("rank_loss"), sv_min=r.get("sv_min"), sv_max=r.get("sv_max"))
        for r in a.rows if r["status"] != "skipped"]
use = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"total": total, "peak_rss": use.ru_maxrss * 1024, "cpu": use.ru_utime + use.ru_stime,
                  "rows": rows, "torch_imported": "torch" in sys.modules}))
"""


def measure(folder: str, threads: int, precision: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    load = os.getloadavg()[0]
    out = subprocess.run([sys.executable, "-c", CHILD, folder, str(threads), precision], capture_output=True,
                         text=True, env=env, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["load_before"], result["load_after"] = load, os.getloadavg()[0]
    return result


def floor_times(shapes: list[tuple], dtype=np.float64) -> dict:
    """One-thread LAPACK floor per shape: Gram (numpy matmul → BLAS) + scipy eigh(evd), values only, in
    ``dtype`` (float64: dsyrk/dgemm + dsyevd; float32: the s- routines)."""
    import scipy.linalg

    out = {}
    for shape in shapes:
        w = llama_spectra.weight("floor." + "x".join(map(str, shape)), shape).astype(dtype)
        with blas_threads(1):
            t0 = time.perf_counter()
            g = w.T @ w if shape[0] >= shape[1] else w @ w.T
            scipy.linalg.eigh(g, driver="evd", eigvals_only=True, overwrite_a=True, check_finite=False)
            out[shape] = time.perf_counter() - t0
        del w, g
    return out


def fires(row: dict) -> bool:
    """Whether the kernel's float64 resolution test (λ_min < 100·(N+M)·ε·λ_max) holds for the row's ESD."""
    n, m = (int(x) for x in row["shape"].split("x"))
    if not row.get("sv_max") or row.get("sv_min") is None:
        return False
    return (row["sv_min"] / row["sv_max"]) ** 2 < 100.0 * (n + m) * np.finfo(np.float64).eps


def block_of(key: str) -> str:
    return key.split(".")[2] if key.startswith("model.layers.") else "other"


def extrapolate(rows: list, quick: bool) -> float:
    """Whole-model seconds: measured sum, or (quick) non-block + block 0 + 31 × block 1."""
    if not quick:
        return sum(r["time"] for r in rows)
    by = {}
    for r in rows:
        by.setdefault(block_of(r["key"]), 0.0)
        by[block_of(r["key"])] += r["time"]
    return by.get("other", 0.0) + by.get("0", 0.0) + (N_BLOCKS - 1) * by.get("1", 0.0)


def ww_one_block(folder: str) -> float | None:
    """WeightWatcher 0.7.7 on decoder block 1 (7 matrices) as torch Linear layers: seconds, or None."""
    try:
        import torch
        import weightwatcher as ww
        from safetensors.numpy import load_file  # noqa: F401
    except ImportError:
        return None
    from hts.inventory import open_model

    mods = []
    for t in open_model(folder).tensors:
        if t.longname.startswith("model.layers.1.") and len(t.shape) == 2:
            w = np.asarray(t.load(), dtype=np.float32)
            lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(w))
            mods.append(lin)
    model = torch.nn.Sequential(*mods)
    t0 = time.perf_counter()
    ww.WeightWatcher(model=model).analyze()
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--precisions", default="float64,float32")
    ap.add_argument("--threads", default="2,1")
    ap.add_argument("--ww", action="store_true", help="also time WeightWatcher 0.7.7 on block 1 (minutes)")
    ap.add_argument("--no-floor", action="store_true")
    ap.add_argument("--runs-from", metavar="JSON", help="report the runs saved in JSON (an earlier run's .json) "
                                                        "instead of measuring them again; floors are measured")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                  "llama_7b.md"))
    args = ap.parse_args(argv)
    blocks = [0, 1] if args.quick else list(range(N_BLOCKS))
    folder, generated = checkpoint(blocks)
    size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
    runs = []
    if args.runs_from:
        with open(args.runs_from) as f:
            runs = json.load(f)["runs"]
    for precision in [] if args.runs_from else args.precisions.split(","):
        for threads in map(int, args.threads.split(",")):
            r = measure(folder, threads, precision)
            r.update(precision=precision, threads=threads)
            runs.append(r)
            with open(os.path.splitext(args.out)[0] + ".json", "w") as f:  # kept when a later run is stopped
                json.dump({"runs": runs}, f, indent=1)
            print(f"{precision} {threads} threads: {r['total']:.1f} s (CPU {r['cpu']:.1f} s), "
                  f"peak RSS {r['peak_rss'] / 1e9:.2f} GB "
                  f"(load {r['load_before']:.1f} → {r['load_after']:.1f})", file=sys.stderr, flush=True)
    shapes = sorted({tuple(int(x) for x in r["shape"].split("x")) for r in runs[0]["rows"]})
    floor = {} if args.no_floor else floor_times(shapes)
    floor32 = {} if args.no_floor or "float32" not in {r["precision"] for r in runs} else \
        floor_times(shapes, np.float32)
    counts = {}
    for r in runs[0]["rows"]:
        counts[r["shape"]] = counts.get(r["shape"], 0) + 1
    label = "extrapolated from blocks 0–1" if args.quick else "measured"
    summary = []
    per_block = {s: counts[s] for s in counts}
    if args.quick:  # whole model: 32 of each block shape, 1 of each non-block shape
        per_block = {"4096x4096": 4 * N_BLOCKS, "11008x4096": 2 * N_BLOCKS, "4096x11008": N_BLOCKS,
                     "32000x4096": 2}

    def model_floor(per_shape: dict) -> float | None:
        if not per_shape:
            return None
        return sum(per_shape[tuple(int(x) for x in s.split("x"))] * c for s, c in per_block.items())

    floor_model, floor_model32 = model_floor(floor), model_floor(floor32)
    for r in runs:
        whole = extrapolate(r["rows"], args.quick)
        fl = floor_model / r["threads"] if floor_model else None
        own = (floor_model32 if r["precision"] == "float32" else floor_model)
        own = own / r["threads"] if own else None
        refined = sum(1 for x in r["rows"] if fires(x)) if r["precision"] == "float64" else "-"
        summary.append([r["precision"], str(r["threads"]), f"{r['total']:.1f}", f"{r['cpu']:.1f}",
                        f"{whole:.0f} ({whole / 60:.1f} min)",
                        f"{fl:.0f}" if fl else "-", f"{whole / fl:.2f}" if fl else "-",
                        f"{own:.0f}" if own else "-", f"{whole / own:.2f}" if own else "-",
                        f"{r['peak_rss'] / 1e9:.2f}", f"{r['load_before']:.1f} → {r['load_after']:.1f}",
                        str(refined)])
    parts = [f"# Whole LLaMA-7B-shaped model, realistic spectra — {time.strftime('%Y-%m-%d')}\n",
             machine() + "\n",
             f"Checkpoint `{folder}`: blocks {blocks[0]}–{blocks[-1]} + embeddings + lm_head, BF16, "
             f"{size / 1e9:.2f} GB ({'generated in %.0f s' % generated if generated else 'reused'}); weights: "
             "`bench/llama_spectra.py` (U·diag(σ)·Vᵀ, fast random orthogonal factors, Marchenko–Pastur bulk + "
             "Pareto tail, near-low-rank q/k).\n",
             markdown_table(["precision", "threads", f"analysed (s, {len(runs[0]['rows'])} matrices)",
                             "CPU s (user + sys; less load-sensitive)",
                             f"whole model s ({label})", "float64 floor s (1-thread LAPACK ÷ threads)",
                             "÷ float64 floor", "same-precision floor s", "÷ same-precision floor",
                             "peak RSS GB", "load avg", "float64 rank refine fired"], summary)]
    if floor:
        first = runs[0]
        rows = []
        for shape in sorted(counts):
            ts = [x["time"] for x in first["rows"] if x["shape"] == shape]
            f1 = floor[tuple(int(x) for x in shape.split("x"))]
            med = statistics.median(ts)
            rows.append([shape, str(len(ts)), f"{med:.2f}", f"{f1:.2f}", f"{f1 / first['threads']:.2f}",
                         f"{med / (f1 / first['threads']):.2f}"])
        parts.append(f"\nPer shape, {first['precision']} at {first['threads']} threads (median layer time, "
                     "read + eigensolve + fit, against the 1-thread LAPACK floor, float64 Gram + syevd, timed "
                     "once per shape):\n")
        parts.append(markdown_table(["shape", "layers", "hts median s", "floor 1 thread s",
                                     f"floor ÷ {first['threads']} s", "hts ÷ floor"], rows))
    if args.ww:
        t = ww_one_block(folder)
        if t is not None:
            parts.append(f"\nWeightWatcher 0.7.7 `analyze()` on decoder block 1 (7 matrices, torch Linear): "
                         f"{t:.0f} s; whole model **extrapolated** as 32 blocks + 2 × the 32000×4096 matrices "
                         f"costed like 2 MLP matrices: ≈ {t * (N_BLOCKS + 2 / 7 * 2):.0f} s.\n")
    detail = [[x["key"], x["shape"], f"{x['time']:.2f}", f"{x['alpha']:.3f}",
               str(x.get("rank_loss")), f"{x['sv_min']:.3g}" if x.get("sv_min") is not None else "-"]
              for x in runs[0]["rows"]]
    parts.append(f"\nLayers ({runs[0]['precision']}, {runs[0]['threads']} threads):\n")
    parts.append(markdown_table(["layer", "shape", "time s", "alpha", "rank_loss", "sv_min"], detail))
    if floor32:
        parts.append("\nFloat32 floor per shape (1 thread, sgemm + ssyevd), s: " + ", ".join(
            f"{'x'.join(map(str, k))} {v:.2f}" for k, v in sorted(floor32.items())) + ".\n")
    parts.append("\nTimes on this machine (2 cores shared with other work) are noisy: compare the load averages; "
                 + ("whole-model figures in quick mode are extrapolations, not measurements." if args.quick else
                    "every whole-model figure here is measured (all 226 matrices)."))
    text = "\n".join(parts) + "\n"
    with open(args.out, "w") as f:
        f.write(text)
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump({"runs": runs, "floor": {"x".join(map(str, k)): v for k, v in floor.items()},
                   "floor_float32": {"x".join(map(str, k)): v for k, v in floor32.items()}}, f, indent=1)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
