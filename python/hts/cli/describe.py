"""``hts describe PATH``: the model's inventory (names, layer types, shapes, dtypes, sizes), no maths."""

from __future__ import annotations

import argparse
from itertools import chain

from ._analysis_args import add_size_gates
from ._common import add_verbosity, write_parts
from ._model_args import add_model_argument, model_path


def add_parser(sub) -> None:
    p = sub.add_parser("describe", help="list a model's weight tensors (no analysis)",
                       description="List the weight tensors of a model file or folder: layer id, name, layer "
                                   "type, shape, dtype, size, the matrix hts analyze would use (N, M, rf, "
                                   "num_evals) and why a tensor would be skipped, with the same size gates as "
                                   "hts analyze (give it the same --min-evals/--max-evals/--max-N/"
                                   "--conv-method/--no-pool).")
    add_model_argument(p)
    gates = p.add_argument_group("size gates (as hts analyze)")
    add_size_gates(gates)
    gates.add_argument("--conv-method", choices=("slices", "stacked", "fft"), default="slices",
                       help="how Conv2D kernels become matrices (default: slices)")
    gates.add_argument("--no-pool", dest="pool", action="store_false",
                       help="gate conv layers per k·k slice rather than pooled")
    gates.add_argument("--start-ids", type=int, default=0, metavar="S",
                       help="number the layer ids from S, as hts analyze --start-ids (default 0)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table",
                   help="table (default), csv or json (one entry per tensor)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    add_verbosity(p)
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = ("examples:\n"
                "  hts describe model.safetensors\n"
                "  hts describe Llama-2-7b-hf/ --format csv -o tensors.csv\n"
                "  hts describe resnet.pth --conv-method fft --min-evals 50\n")
    p.set_defaults(func=lambda args: run(args, p))


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import hts

    if args.start_ids < 0:
        parser.error(f"--start-ids must be >= 0, got {args.start_ids}")
    inv = hts.open(model_path(args, parser), split_fused=args.split_fused)
    gates = dict(pool=args.pool, conv_method=args.conv_method, min_evals=args.min_evals,
                 max_evals=args.max_evals, max_N=args.max_N, start_ids=args.start_ids)
    if args.format == "json":
        parts = chain(inv.json_parts(indent=1, **gates), ["\n"])
    elif args.format == "csv":
        parts = (df.to_csv(index=False, header=k == 0) for k, df in enumerate(inv.table_frames(**gates)))
    else:
        parts = [_table_text(inv, gates)]
    write_parts(parts, args.output)  # a long listing part by part (Inventory.table_frames, json_parts)
    return 0


def _table_text(inv, gates: dict) -> str:
    df = inv.table(**gates)
    for col in ("N", "M", "rf", "num_evals"):
        df[col] = df[col].astype("Int64")  # integers, <NA> for tensors that are not matrices
    df["MB"] = (df.pop("bytes") / 1e6).round(3)
    if "lora_rank" in df:  # a PEFT adapter: the row is the update ΔW = s·B·A of the base weight `key`
        df["lora_rank"] = df["lora_rank"].astype("Int64")
        df.insert(1, "longname", df.pop("longname"))
        df = df.drop(columns=["key"])
    else:
        df = df.drop(columns=["longname"])
    analysable = int(df.pop("analysed").sum()) if "analysed" in df else 0
    where = f"{inv.path}: " if inv.path else ""
    formats = sorted({t.source for t in inv if t.source})
    fmt = f", format {', '.join(formats)}" if formats else ""
    return (df.to_string(index=False) + "\n" + f"{where}{len(df)} tensors ({analysable} analysable, "
            f"{len(df) - analysable} skipped with these options), {inv.nbytes / 1e6:.1f} MB{fmt}\n")
