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
        parts = _table_parts(inv, gates)
    write_parts(parts, args.output)  # a long listing part by part (Inventory.table_frames, json_parts)
    return 0


def _table_parts(inv, gates: dict):
    """The table format's text, in parts."""
    from .._frames import CHUNK_ROWS

    if len(inv) > CHUNK_ROWS:
        return _long_table_text(inv, gates)
    df, analysable = _shown(inv.table(**gates))
    return [df.to_string(index=False) + "\n" + _footer(inv, len(df), analysable)]


def _shown(df):
    """The table's columns as shown, and how many rows are analysable."""
    for col in ("N", "M", "rf", "num_evals"):
        df[col] = df[col].astype("Int64")  # integers, <NA> for tensors that are not matrices
    df["MB"] = (df.pop("bytes") / 1e6).round(3)
    if "lora_rank" in df:  # a PEFT adapter: the row is the update ΔW = s·B·A of the base weight `key`
        df["lora_rank"] = df["lora_rank"].astype("Int64")
        df.insert(1, "longname", df.pop("longname"))
        df = df.drop(columns=["key"])
    else:
        df = df.drop(columns=["longname"])
    return df, int(df.pop("analysed").sum()) if "analysed" in df else 0


def _footer(inv, n: int, analysable: int) -> str:
    where = f"{inv.path}: " if inv.path else ""
    formats = sorted({t.source for t in inv if t.source})
    fmt = f", format {', '.join(formats)}" if formats else ""
    return (f"{where}{n} tensors ({analysable} analysable, {n - analysable} skipped with these options), "
            f"{inv.nbytes / 1e6:.1f} MB{fmt}\n")


def _long_table_text(inv, gates: dict):
    """The table of more tensors than a chunk, as the lines pandas writes for the whole table, made a chunk at a
    time (``Inventory.table_frames``): a first pass finds each column's width (pandas: the longest value, or the
    header, + 1 for a number column) and each float column's decimals
    (pandas shows a float column with the fewest of 1-6 decimals that show every value; its values are kept, 8
    bytes a row), the second writes each chunk with those widths and its floats so formatted. Yields text."""
    import numpy as np

    widths: dict = {}
    floats: dict = {}
    n = analysable = 0
    for df in inv.table_frames(**gates):
        df, a = _shown(df)
        n, analysable = n + len(df), analysable + a
        for c in df.columns:
            if df[c].dtype.kind == "f":
                floats.setdefault(c, []).append(df[c].to_numpy())
            else:
                head = len(str(c)) + (df[c].dtype.kind in "iub")  # pandas: a number column's header + 1
                widths[c] = max(widths.get(c, head), max(len(_cell(v)) for v in df[c]))
    decimals = {}
    for c, parts in floats.items():
        values = np.concatenate(parts)
        decimals[c] = _decimals(values)
        widths[c] = max([len(str(c)) + 1] + [len(_float_text(v, decimals[c])) for v in values])
    del floats
    for k, df in enumerate(inv.table_frames(**gates)):
        df, _ = _shown(df)
        for c, d in decimals.items():
            df[c] = [_float_text(v, d) for v in df[c]]
        yield df.to_string(index=False, header=k == 0, col_space=widths) + "\n"
    yield _footer(inv, n, analysable)


def _cell(v) -> str:
    """A value as pandas shows it in a table (floats aside)."""
    import pandas as pd

    if v is pd.NA:
        return "<NA>"
    if v is None or (isinstance(v, float) and v != v):
        return "NaN"
    return str(v)


def _float_text(v: float, d: int) -> str:
    return f"{v:.{d}f}" if v == v else "NaN"


def _decimals(values) -> int:
    """The decimals pandas shows a float column with: '%.6f' of every finite value, trailing zeros trimmed
    while every value has one, at least one."""
    import math

    most = 1
    for v in values:
        if math.isfinite(v):
            most = max(most, len(f"{v:.6f}".rstrip("0").split(".")[1]))
    return most
