"""Peak memory of each reader: GGUF, ONNX, Keras, Flax, against the largest tensor (float32) + its Gram matrix.

Files written here, each holding one large matrix (``--rows`` x 4096, LLaMA-7B's vocabulary x hidden by default:
0.52 GB in float32) and a few small ones:

- GGUF: a LLaMA-7B-shaped Q4_K_M file as bench/gguf_dequant.py writes it, with ``--gguf-layers`` decoder layers
  (token_embd Q4_K and output Q6_K are 32000 x 4096; attention 4096 x 4096, MLP 11008 x 4096 Q4_K);
- ONNX: float32 initializers consumed by MatMul nodes, raw data inside the .onnx;
- Keras: a Keras 3 ``.keras`` zip (config.json + model.weights.h5 as Keras writes it, stored) of Dense kernels;
- Flax: a ``flax.serialization`` msgpack checkpoint of Dense kernels.

Each measurement is a fresh process (peak RSS = ``VmHWM``; ``ru_maxrss`` would keep this process's pages across
exec) that has imported hts, numpy and the format's library first (``base``); then (1) lists the file, (2) loads
every tensor one at a time, dropping each, (3) in another fresh process, ``hts.analyze`` of the whole file.

    python bench/reader_peak_rss.py                 # about 5 minutes here
    python bench/reader_peak_rss.py --rows 8000     # quick
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _common import markdown_table, write_report  # noqa: E402

HIDDEN = 4096
PRELOAD = {"gguf": [], "onnx": ["onnx"], "keras": ["h5py"], "flax": ["msgpack"]}

CHILD = r"""
import importlib, json, sys, time
import numpy, hts
def hwm():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
path, what = sys.argv[1], sys.argv[2]
for name in sys.argv[3:]:
    importlib.import_module(name)
out = {"base": hwm()}
t0 = time.perf_counter()
if what == "read":
    tensors = hts.open(path)
    out["listed"], out["tensors"] = hwm(), len(tensors)
    largest = 0
    for t in tensors:
        if t.skip_reason:
            continue
        w = t.load()
        largest = max(largest, w.size * 4)
        del w
    out["largest"] = largest
else:
    a = hts.analyze(path, threads=2)
    out["analysed"] = sum(r["status"] == "ok" for r in a.rows)
out["seconds"] = time.perf_counter() - t0
out["peak"] = hwm()
print(json.dumps(out))
"""


def weights(rows: int) -> dict:
    rng = np.random.default_rng(0)
    return {"embed": (rng.standard_normal((rows, HIDDEN), dtype=np.float32) / 64),
            "fc1": rng.standard_normal((HIDDEN, 512), dtype=np.float32) / 64,
            "fc2": rng.standard_normal((512, HIDDEN), dtype=np.float32) / 64}


def write_onnx(path: str, w: dict) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(a, f"{k}.weight") for k, a in w.items()]
    nodes, prev = [], "x"
    for k in w:
        nodes.append(helper.make_node("MatMul", [prev, f"{k}.weight"], [f"{k}_out"], name=f"/{k}/MatMul"))
        prev = f"{k}_out"
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info(prev, TensorProto.FLOAT, None)], initializer=inits)
    onnx.save(helper.make_model(graph), path)


def write_keras(path: str, w: dict) -> None:
    """A Keras 3 archive as ``model.save`` writes it: config.json and model.weights.h5 (layers/<name>/vars/0)."""
    import h5py

    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        for k, a in w.items():
            v = f.create_group(f"layers/{k}/vars")
            v.attrs["name"] = k
            v.create_dataset("0", data=a)
    config = {"class_name": "Sequential", "config": {"name": "m", "layers": [
        {"class_name": "Dense", "config": {"name": k}} for k in w]}}
    with zipfile.ZipFile(path, "w") as z:  # stored, as Keras writes it
        z.writestr("config.json", json.dumps(config))
        z.writestr("metadata.json", '{"keras_version": "3.15.1"}')
        z.writestr("model.weights.h5", buf.getvalue())


def write_flax(path: str, w: dict) -> None:
    """flax.serialization's layout: ExtType(1, packb([shape, dtype, bytes])) leaves in nested maps."""
    import msgpack

    def ext(a):
        return msgpack.ExtType(1, msgpack.packb([list(a.shape), a.dtype.name, a.tobytes()], use_bin_type=True))

    tree = {"params": {f"Dense_{i}": {"kernel": ext(a)} for i, a in enumerate(w.values())}}
    with open(path, "wb") as f:
        f.write(msgpack.packb(tree, use_bin_type=True))


def child(path: str, what: str, fmt: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="2")
    done = subprocess.run([sys.executable, "-c", CHILD, path, what, *PRELOAD[fmt]], capture_output=True, text=True,
                          env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=32000)
    parser.add_argument("--gguf-layers", type=int, default=1)
    parser.add_argument("--no-analyze", action="store_true", help="skip the hts.analyze rows")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "reader_peak_rss.md"))
    args = parser.parse_args()
    from gguf_dequant import write_llama

    mb = 2**20
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        w = weights(args.rows)
        files = {"gguf": os.path.join(folder, "m.gguf"), "onnx": os.path.join(folder, "m.onnx"),
                 "keras": os.path.join(folder, "m.keras"), "flax": os.path.join(folder, "m.msgpack")}
        write_llama(files["gguf"], args.gguf_layers)
        write_onnx(files["onnx"], w)
        write_keras(files["keras"], w)
        write_flax(files["flax"], w)
        del w
        for fmt, path in files.items():
            r = child(path, "read", fmt)
            largest = r["largest"]
            gram = HIDDEN * HIDDEN * 8
            row = [fmt, f"{os.path.getsize(path) / mb:.0f}", str(r["tensors"]), f"{largest / mb:.0f}",
                   f"{(largest + gram) / mb:.0f}", f"{r['base'] / mb:.0f}", f"{(r['listed'] - r['base']) / mb:.0f}",
                   f"{(r['peak'] - r['base']) / mb:.0f}", f"{r['seconds']:.1f}"]
            if args.no_analyze:
                row += ["", ""]
            else:
                a = child(path, "analyze", fmt)
                row += [f"{(a['peak'] - a['base']) / mb:.0f}", f"{a['seconds']:.0f}"]
            rows.append(row)
            print(" | ".join(row), file=sys.stderr)
    table = markdown_table(["format", "file (MiB)", "tensors", "largest tensor, float32 (MiB)",
                            "largest + Gram (MiB)", "base RSS (MiB)", "listing adds (MiB)",
                            "loading every tensor adds (MiB)", "load time (s)", "hts.analyze adds (MiB)",
                            "analyze time (s)"], rows)
    note = (f"GGUF: LLaMA-7B-shaped Q4_K_M, {args.gguf_layers} decoder layer(s) + token_embd (Q4_K) + output (Q6_K), "
            f"largest tensor 32000 x 4096. ONNX / Keras / Flax: float32 {args.rows} x {HIDDEN}, {HIDDEN} x 512 and "
            f"512 x {HIDDEN}. Gram: {HIDDEN} x {HIDDEN} float64. 'adds' = peak RSS (VmHWM) of a fresh process minus "
            "its peak after importing hts, numpy and the format's library (base). Loading: every tensor, one at a "
            "time, dropped after use. Shared 2-core machine: times are noisy; memory is not.")
    write_report("Peak memory of the GGUF, ONNX, Keras and Flax readers", args.rows < 32000, [table, "", note],
                 args.out)


if __name__ == "__main__":
    main()
