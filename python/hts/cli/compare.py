"""``hts compare INPUT... -o series.html``: how summary metrics track reported accuracy across related models.

INPUT is a CSV of already-computed summaries (one row per model, with an accuracy or error column, and
optionally a ``series`` column), or a model file/folder (``NAME=PATH`` to name it; default its file stem)
whose accuracy comes from ``--accuracy``.
"""

from __future__ import annotations

import argparse
import logging

from ._common import add_verbosity
from ._analysis_args import add_analysis_options, analysis_options

__all__ = ["add_parser"]

logger = logging.getLogger("hts")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "compare", help="compare a series of models: metrics against reported accuracy",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="summary CSV, or model path / NAME=PATH")
    p.add_argument("--accuracy", action="append", default=[], metavar="CSV|NAME=VALUE",
                   help="reported accuracy in %%: a CSV (model column + accuracy or error column) or NAME=VALUE "
                        "(repeatable)")
    col = p.add_mutually_exclusive_group()
    col.add_argument("--accuracy-column", help="CSV column holding the accuracy in %%")
    col.add_argument("--error-column", help="CSV column holding the error in %% (accuracy = 100 - error)")
    p.add_argument("--series", help="series name for every model (default: the CSV's series column)")
    p.add_argument("--metrics", nargs="+", metavar="METRIC", help="metrics to compare (default: all present)")
    p.add_argument("-o", "--output", metavar="HTML", help="write the self-contained HTML page")
    p.add_argument("--csv", metavar="FILE", help="write the statistics table as CSV")
    p.add_argument("--json", metavar="FILE", help="write models and statistics as JSON")
    p.add_argument("--plot", metavar="FILE", help="write the metric-vs-accuracy figure (.png or .svg)")
    add_analysis_options(p, layers=False, progress=False)
    add_verbosity(p)
    p.set_defaults(func=lambda args: run(args, p))


def _accuracy(values: list[str]):
    csvs = [v for v in values if "=" not in v]
    pairs = [v for v in values if "=" in v]
    if len(csvs) > 1 or (csvs and pairs):
        raise ValueError("give --accuracy once as a CSV, or as NAME=VALUE pairs")
    if csvs:
        return csvs[0]
    out = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        try:
            out[name] = float(value)
        except ValueError:
            raise ValueError(f"--accuracy {pair!r}: {value!r} is not a number") from None
    return out or None


def _inputs(values: list[str]) -> list:
    out = []
    for v in values:
        name, sep, path = v.partition("=")
        out.append((name, path) if sep and name and not v.lower().endswith(".csv") else v)
    return out


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .. import compare

    from ..report.compare import CompareInputError

    options = analysis_options(args, parser)
    try:
        result = compare(_inputs(args.inputs), _accuracy(args.accuracy), series=args.series,
                         metrics=args.metrics, accuracy_column=args.accuracy_column,
                         error_column=args.error_column, **options)
    except CompareInputError as err:  # the same message in the command line's options
        raise ValueError(err.cli) from None
    print(result.format())
    if args.output:
        result.to_html(args.output)
        logger.info("wrote %s", args.output)
    if args.csv:
        result.to_csv(args.csv)
    if args.json:
        result.to_json(args.json)
    if args.plot:
        from ..report import plots

        plots.series(result, path=args.plot)
    return 0
