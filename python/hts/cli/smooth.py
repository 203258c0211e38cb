"""``hts smooth PATH -o OUT``: WeightWatcher's SVDSmoothing / SVDSharpness on a model file, written to a new file.

Every analysable layer keeps its top k singular components (``--method``: detX, svd, rmt, alpha_min, auto), or
with ``--sharpen`` loses its correlation traps (the top components that survive a random permutation); see
``hts.svd_smoothing`` / ``hts.svd_sharpness``. The input is never modified; OUT has the input's format and every
tensor of it (biases, norms, buffers as they were; dtypes kept). Formats: a single ``.safetensors`` file (its
metadata kept; needs torch for bfloat16 and float8 tensors), a PyTorch ``.pt``/``.pth``/``.bin`` state dict (needs
torch; read with ``weights_only=True``) and ``.npz``. ``--dry-run`` prints the k of every layer and writes nothing.
"""

from __future__ import annotations

import argparse
import os
import sys

from ._analysis_args import add_size_gates, check_output_path
from ._common import add_verbosity

__all__ = ["add_parser"]

FORMATS = {".safetensors": "safetensors", ".pt": "torch", ".pth": "torch", ".bin": "torch", ".npz": "npz"}


def add_parser(sub) -> None:
    from ..smoothing import SMOOTHING_METHODS

    p = sub.add_parser("smooth", help="SVD smoothing / sharpening of a model file (WeightWatcher's SVDSmoothing)",
                       description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path", metavar="PATH", help="model file: .safetensors, .pt/.pth/.bin (a state dict) or .npz")
    p.add_argument("-o", "--output", metavar="OUT", help="the edited model (same format as PATH; required unless "
                                                          "--dry-run)")
    p.add_argument("--method", choices=SMOOTHING_METHODS, default="detX",
                   help="how many components each layer keeps (default detX; svd: --percent of them)")
    p.add_argument("--percent", type=float, default=0.8, metavar="P", help="the kept fraction for --method svd (negative: the fraction removed from the top)")
    p.add_argument("--sharpen", action="store_true",
                   help="WeightWatcher's SVDSharpness instead: remove each layer's correlation traps")
    p.add_argument("--seed", type=int, default=0, help="seed of --sharpen's permutations (default 0)")
    p.add_argument("--layers", metavar="FILTER",
                   help="which layers to edit (as hts analyze --layers; ids count the file's *.weight tensors)")
    add_size_gates(p)
    p.add_argument("--threads", type=int, metavar="N", help="native threads (default: the cores available)")
    p.add_argument("--dry-run", action="store_true", help="print the k of every layer; write nothing")
    add_verbosity(p)
    p.epilog = ("examples:\n"
                "  hts smooth model.safetensors -o smoothed.safetensors\n"
                "  hts smooth model.pt -o sharpened.pt --sharpen --seed 1\n"
                "  hts smooth model.safetensors --method svd --percent 0.5 --dry-run\n")
    p.set_defaults(func=lambda args: run(args, p))


def _load(path: str, kind: str):
    """(state dict, metadata) of the file."""
    if kind == "npz":
        import numpy as np

        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}, None
    try:
        import torch  # noqa: F401
    except ImportError:
        torch = None
    if kind == "torch":
        if torch is None:
            raise ImportError(f"{path}: reading a PyTorch checkpoint needs torch (pip install torch==2.13.0)")
        return torch.load(path, map_location="cpu", weights_only=True), None
    try:
        from safetensors import safe_open
    except ImportError:
        raise ImportError(f"{path}: hts smooth writes safetensors with the safetensors package: pip install "
                          f"safetensors") from None

    framework = "pt" if torch is not None else "numpy"
    try:
        with safe_open(path, framework=framework) as f:
            return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()
    except (TypeError, ValueError) as err:
        if torch is None:
            raise ImportError(f"{path}: {err} (bfloat16/float8 tensors need torch: pip install torch==2.13.0)") from err
        raise


def _save(state, metadata, path: str, kind: str) -> None:
    if kind == "npz":
        import numpy as np

        np.savez(path, **state)
    elif kind == "torch":
        import torch

        torch.save(state, path)
    elif any(type(v).__module__.startswith("torch") for v in state.values()):
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, path, metadata=metadata)
    else:
        from safetensors.numpy import save_file

        save_file(state, path, metadata=metadata)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .. import smoothing
    from ..selection import parse_layer_filter

    kind = FORMATS.get(os.path.splitext(args.path)[1].lower())
    if kind is None:
        parser.error(f"{args.path}: hts smooth reads {', '.join(FORMATS)} files (a folder or a sharded model: "
                     f"smooth its files one by one, or load it and call hts.svd_smoothing)")
    if not args.dry_run:
        if not args.output:
            parser.error("-o OUT is required (or --dry-run)")
        if FORMATS.get(os.path.splitext(args.output)[1].lower()) != kind:
            parser.error(f"-o {args.output}: the output has the input's format ({kind}); use the same extension")
        if os.path.exists(args.output) and os.path.samefile(args.output, args.path):
            parser.error("-o is the input file: hts smooth never overwrites its input")
        check_output_path(args.output, parser)
    if args.sharpen and args.method != "detX":
        parser.error("--method applies to smoothing, not to --sharpen")
    if not 0 < abs(args.percent) <= 1:
        parser.error(f"--percent must be in [-1, 0) or (0, 1], got {args.percent}")
    state, metadata = _load(args.path, kind)
    gates = dict(layers=parse_layer_filter(args.layers), min_evals=args.min_evals, max_evals=args.max_evals,
                 max_N=args.max_N, threads=args.threads)
    if args.sharpen:
        plan = smoothing.sharpness_plan(state, seed=args.seed, **gates)
    else:
        plan = smoothing.smoothing_plan(state, method=args.method, percent=args.percent, **gates)
    edited = sum(1 for p in plan if not p["reason"])
    lines = [f"{p['layer_id']:>5}  {p['longname']:<48} k={p['k']:>6}  per slice {p['k_slice']:>5}"
             f"{'  ' + p['reason'] if p['reason'] else ''}" for p in plan]
    what = "kept the top k components" if not args.sharpen else "removed the top |k| components (traps)"
    if args.dry_run:
        sys.stdout.write("\n".join(lines + [f"{args.path}: {edited} of {len(plan)} analysable layers would be "
                                             f"edited"]) + "\n")
        return 0
    _save(smoothing._apply(state, plan), metadata, args.output, kind)
    if not args.quiet:
        sys.stderr.write(f"hts: {args.output}: {edited} of {len(plan)} analysable layers edited ({what})\n")
    return 0
