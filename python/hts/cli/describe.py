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
    write_parts(parts, args.output, escape=True)  # a long listing part by part (Inventory.table_frames, json_parts)
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
    time: one pass over ``iter_rows`` finds the column types (``hts._frames.Scan``), each column's width (pandas:
    its longest value shown — "<NA>" for a missing integer, "NaN" otherwise, tab and newlines escaped — or its
    header, + 1 for a number column) and keeps the float columns' values (MB and a LoRA's scale, 8 bytes a
    row) for their decimals (pandas shows a float column with the fewest of 1-6 decimals that show every
    value); a second pass writes each chunk with those widths and its floats so formatted. Yields text."""
    import numpy as np
    import pandas as pd

    from .._frames import Scan
    from ..inventory import _table_columns

    longest: dict = {}
    missing: set = set()
    kept: dict = {"bytes": [], "lora_scale": []}  # the table's float columns (MB is bytes / 1e6)
    counted = {"rows": 0, "analysable": 0}

    def watched(rows):
        for row in rows:
            counted["rows"] += 1
            counted["analysable"] += bool(row.get("analysed"))
            for c, v in row.items():
                if c in kept:
                    kept[c].append(v)
                elif v is None or v != v:
                    missing.add(c)
                else:
                    text = str(v)
                    size = len(text)
                    if isinstance(v, str) and ("\t" in text or "\n" in text or "\r" in text):  # shown escaped
                        size += text.count("\t") + text.count("\n") + text.count("\r")
                    if size > longest.get(c, 0):
                        longest[c] = size
            yield row

    scan = Scan(watched(inv.iter_rows(**gates)))
    n = counted["rows"]
    columns = _table_columns(scan.seen)
    shown, _ = _shown(pd.DataFrame([], columns=columns).astype(scan.types(columns)))
    floats = {"MB": np.round(np.asarray(kept["bytes"], dtype=np.float64) / 1e6, 3)}
    if "lora_scale" in shown:
        floats["lora_scale"] = np.asarray([np.nan if v is None else v for v in kept["lora_scale"]] +
                                          [np.nan] * (n - len(kept["lora_scale"])), dtype=np.float64)
    del kept
    widths, decimals = {}, {}
    for c in shown.columns:
        head = len(str(c)) + (shown[c].dtype.kind in "iufb")  # pandas: a number column's header + 1
        if c in floats:
            decimals[c] = _decimals(floats[c])
            widths[c] = max([head] + [len(_float_text(v, decimals[c])) for v in floats[c]])
        else:
            gap = (4 if shown[c].dtype.kind in "iu" else 3) if c in missing else 0
            widths[c] = max(head, longest.get(c, 0), gap)
    del floats
    for k, df in enumerate(inv.table_frames(scan=scan, **gates)):
        df, _ = _shown(df)
        for c, d in decimals.items():
            df[c] = [_float_text(v, d) for v in df[c]]
        yield df.to_string(index=False, header=k == 0, col_space=widths) + "\n"
    yield _footer(inv, n, counted["analysable"])


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
