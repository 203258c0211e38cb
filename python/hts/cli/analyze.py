"""``hts analyze PATH``: the per-layer table and the model summary."""

from __future__ import annotations

import argparse
import json
from itertools import chain

from ._analysis_args import add_analysis_options, analysis_options, analyze_path, check_output_path, exit_status
from ._common import add_verbosity, write_parts
from ._model_args import add_base_option, add_model_argument, model_path

#: Columns of the ``table`` format (every column is in csv, json and parquet).
TABLE_COLUMNS = ["layer_id", "longname", "layer_type", "N", "M", "rf", "num_evals", "alpha", "Lambda", "xmin", "D",
                 "alpha_weighted", "log_norm", "log_spectral_norm", "stable_rank", "status", "warning"]
#: Key columns of base-vs-tuned rows (--base, LoRA adapters): the row's role, the LoRA scale, the changes.
ROLE_COLUMNS = ["role", "lora_rank", "lora_scale", "delta_alpha", "delta_alpha_weighted", "delta_log_norm"]
#: Key columns added to the table by --mp-fit and --randomize (as the HTML report shows them).
OPTION_COLUMNS = {"mp_fit": ["num_spikes", "mp_softrank"], "randomize": ["rand_distance", "num_traps"]}


def add_parser(sub) -> None:
    p = sub.add_parser("analyze", help="spectral metrics of every weight matrix, and the model summary",
                       description="Analyse every weight matrix of a model: one row per matrix (WeightWatcher "
                                   "0.7.7's columns) and the model summary.")
    add_model_argument(p)
    add_base_option(p)
    p.add_argument("--format", choices=("table", "csv", "json", "parquet"), default="table",
                   help="table (default; key columns + summary), csv (all columns), json (summary, counts, "
                        "options and every row), parquet (all columns; needs pyarrow and -o)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    add_analysis_options(p)
    add_verbosity(p)
    p.set_defaults(func=lambda args: run(args, p))


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    options = analysis_options(args, parser)
    if args.format == "parquet" and not args.output:
        parser.error("--format parquet needs -o FILE")
    if args.format == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ImportError("--format parquet needs pyarrow: pip install 'hts[parquet]'") from None
    check_output_path(args.output, parser)
    path = model_path(args, parser)
    analysis = analyze_path(path, args, options)
    write(analysis, args)
    return exit_status(analysis, path)


def write(analysis, args: argparse.Namespace) -> None:
    """The result in ``args.format``, written to ``args.output`` or standard output part by part (a long table
    is never held as one text: ``Analysis.detail_frames``, ``Analysis.json_parts``)."""
    if args.format == "parquet":
        write_parquet(analysis, args.output)
        return
    if args.format == "json":
        parts = chain(analysis.json_parts(indent=1), ["\n"])
    elif args.format == "csv":
        parts = (df.to_csv(index=False, header=k == 0) for k, df in enumerate(analysis.detail_frames()))
    else:
        parts = [table_text(analysis)]
    write_parts(parts, args.output, escape=True)


def write_parquet(analysis, path: str) -> None:
    """``analysis.details.to_parquet(path, index=False)``, a row group per chunk when there are more rows than a
    chunk (``Analysis.detail_frames``): the file's schema is the chunks' schemas unified (a column that is all
    missing in one chunk has no type there), so it reads back as the whole table. A lone surrogate in a name is
    written as its Python escape ("\\ud800"), as in the other formats: parquet text is UTF-8."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .._frames import escaped

    frames = map(escaped, analysis.detail_frames())
    first = next(frames)
    rest = next(frames, None)
    if rest is None:  # one chunk: the table itself, written as before
        first.to_parquet(path, index=False)
        return
    schemas = [pa.Schema.from_pandas(df, preserve_index=False) for df in map(escaped, analysis.detail_frames())]
    schema = pa.unify_schemas(schemas, promote_options="permissive").with_metadata(schemas[0].metadata)
    with pq.ParquetWriter(path, schema) as writer:
        for df in map(escaped, analysis.detail_frames()):
            writer.write_table(pa.Table.from_pandas(df, schema=schema, preserve_index=False))


def table_text(analysis) -> str:
    frames = list(analysis.detail_frames(skipped=False))  # one unless very long
    if len(frames) == 1:
        df = frames[0]
    else:
        import pandas as pd

        df = pd.concat(frames)
    extra = [c for option, cols in OPTION_COLUMNS.items() if analysis.options.get(option) for c in cols]
    extra += [c for c in ROLE_COLUMNS if c in df.columns]  # LoRA / base-vs-tuned rows
    columns = [c for c in TABLE_COLUMNS[:-2] + extra + TABLE_COLUMNS[-2:] if c in df.columns]
    if "slice_id" in df.columns:
        columns.insert(2, "slice_id")
    lines = [df[columns].to_string(index=False, float_format=lambda x: f"{x:.4g}"), ""]
    counts = analysis.counts
    by_role = analysis.summary_by_role
    lines.append(("summary of the updates: " if "change" in by_role else "summary: ")
                 + json.dumps({k: round(v, 6) for k, v in analysis.summary.items()}))
    if "change" in by_role:
        lines.append("mean change:  " + json.dumps({k: round(v, 6) for k, v in by_role["change"].items()}))
    lines.append("counts:  " + json.dumps(counts))
    if counts["skipped"]:
        lines.append(f"{counts['skipped']} tensors skipped (see the 'reason' column of --format csv/json)")
    return "\n".join(lines) + "\n"
