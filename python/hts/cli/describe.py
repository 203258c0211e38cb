"""``hts describe PATH``: the model's inventory (names, layer types, shapes, dtypes, sizes), no maths."""

from __future__ import annotations

import argparse
import json
import sys

from ._common import add_verbosity
from ._model_args import add_model_argument, model_path


def add_parser(sub) -> None:
    p = sub.add_parser("describe", help="list a model's weight tensors (no analysis)",
                       description="List the weight tensors of a model file or folder: layer id, name, layer "
                                   "type, shape, dtype, size, and why a tensor would be skipped.")
    add_model_argument(p)
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    add_verbosity(p)
    p.set_defaults(func=lambda args: run(args, p))


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import hts

    inv = hts.open(model_path(args, parser), split_fused=args.split_fused)
    if args.format == "json":
        text = json.dumps(inv.to_dict(), indent=1) + "\n"
    elif args.format == "csv":
        text = inv.table().to_csv(index=False)
    else:
        df = inv.table()
        df["MB"] = (df.pop("bytes") / 1e6).round(3)
        df = df.drop(columns=["longname", "analysed"])
        text = df.to_string(index=False) + "\n" + repr(inv) + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0
