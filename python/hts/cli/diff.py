"""``hts diff BASE TUNED``: what fine-tuning changed, layer by layer.

TUNED is a model of BASE's architecture (file or folder), or a PEFT LoRA adapter folder. Each row is the
update ΔW = W_tuned − W_base (for an adapter: s·B·A, and the base W and merged W + s·B·A beside it) with its
own α, norms and stable rank, and the change of each metric from base to tuned (delta_alpha, ...).
Tensors matched by name; unmatched tensors and shape mismatches are listed with the reason.
"""

from __future__ import annotations

import argparse
import json

from ._analysis_args import add_analysis_options, analysis_options, check_output_path, exit_status
from ._common import add_verbosity, write_parts

__all__ = ["add_parser"]

#: Columns of the ``table`` format (csv and json have every column).
TABLE_COLUMNS = ["layer_id", "longname", "role", "N", "M", "lora_rank", "lora_scale", "alpha", "log_norm", "stable_rank",
                 "delta_alpha", "delta_alpha_weighted", "delta_log_norm", "delta_log_spectral_norm", "status"]


def add_parser(sub) -> None:
    p = sub.add_parser("diff", help="base vs tuned (or a LoRA adapter): the update's spectra and metric changes",
                       description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("base", metavar="BASE", help="the base model (file or folder)")
    p.add_argument("tuned", metavar="TUNED", help="the tuned model (file or folder) or a PEFT adapter folder")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table",
                   help="table (default; key columns), csv or json (every column)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    p.add_argument("--distances", action="store_true",
                   help="also print hts.distances (raw, euclidean, cka, ESD KS/Wasserstein) per layer")
    add_analysis_options(p, progress=False)
    add_verbosity(p)
    p.set_defaults(func=lambda args: run(args, p))


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import hts

    from ..selection import parse_layer_filter

    options = analysis_options(args, parser)
    check_output_path(args.output, parser)
    result = hts.analyze(args.tuned, base=args.base, layers=parse_layer_filter(args.layers), **options)
    if args.format == "json":
        data = result.to_dict()
        if args.distances:
            data["distances"] = hts.distances(args.base, args.tuned, threads=args.threads).to_dict()
        text = json.dumps(data, allow_nan=False, indent=1) + "\n"
    elif args.format == "csv":
        text = result.details.to_csv(index=False)
    else:
        text = _table(result)
        if args.distances:
            d = hts.distances(args.base, args.tuned, threads=args.threads)
            df = d.details
            text += "\ndistances:\n" + df.to_string(index=False, float_format=lambda x: f"{x:.4g}") + "\n"
            text += "mean: " + json.dumps({k: round(v, 6) for k, v in d.summary.items()}) + "\n"
    write_parts([text], args.output, escape=True)
    return exit_status(result, args.tuned)


def _table(result) -> str:
    df = result.details
    shown = df[df.status != "skipped"]
    columns = [c for c in TABLE_COLUMNS if c in df.columns]
    lines = [shown[columns].to_string(index=False, float_format=lambda x: f"{x:.4g}"), ""]
    by_role = result.summary_by_role
    lines.append("summary of the updates: " + json.dumps({k: round(v, 6) for k, v in result.summary.items()}))
    if "change" in by_role:
        lines.append("mean change: " + json.dumps({k: round(v, 6) for k, v in by_role["change"].items()}))
    skipped = df[df.status == "skipped"]
    vectors = [r["key"] for _, r in skipped.iterrows()
               if str(r["reason"]).startswith("only in the base") and "x" not in str(r["shape"])]
    for _, r in skipped.iterrows():
        if r["key"] not in vectors:
            lines.append(f"not compared: {r['key']}: {r['reason']}")
    if vectors:  # 1-D tensors (norm weights, biases) the tuned model does not list: one line (every row in csv/json)
        lines.append(f"not compared: {len(vectors)} 1-D tensors only in the base model (norm weights, biases; "
                     f"listed in --format csv/json): {', '.join(vectors[:3])}{', ...' if len(vectors) > 3 else ''}")
    return "\n".join(lines) + "\n"
