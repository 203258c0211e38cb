"""``hts compare INPUT... -o series.html``: how summary metrics track reported accuracy across related models,
or, without accuracies, how they move over a model's training checkpoints.

INPUT is a CSV of already-computed summaries (one row per model, with an accuracy or error column, and
optionally a ``series`` column), or a model file/folder (``NAME=PATH`` to name it; default its file stem)
whose accuracy comes from ``--accuracy``. Model paths given without any --accuracy are checkpoints of one
training run (``hts compare ckpt-100/ ckpt-200/ ...`` or a quoted pattern ``'run/checkpoint-*'``): a trajectory
of the metrics per checkpoint and per layer, its step the last number in each name, flagged where mean alpha
falls below 2.
"""

from __future__ import annotations

import argparse
import logging

from ._common import add_verbosity
from ._analysis_args import add_analysis_options, analysis_options, check_output_path

__all__ = ["add_parser"]

logger = logging.getLogger("hts")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "compare", help="compare a series of models: metrics against reported accuracy",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="summary CSV, or model path / NAME=PATH; a quoted shell pattern ('run/checkpoint-*') is "
                        "expanded in step order")
    p.add_argument("--accuracy", action="append", default=[], metavar="CSV|NAME=VALUE",
                   help="reported accuracy in %%: a CSV (model column + accuracy or error column) or NAME=VALUE "
                        "(repeatable)")
    col = p.add_mutually_exclusive_group()
    col.add_argument("--accuracy-column", help="CSV column holding the accuracy in %%")
    col.add_argument("--error-column", help="CSV column holding the error in %% (accuracy = 100 - error)")
    p.add_argument("--series", help="series name for every model (default: the CSV's series column)")
    p.add_argument("--metrics", nargs="+", metavar="METRIC", help="metrics to compare (default: all present)")
    p.add_argument("--steps", metavar="N,N,...",
                   help="trajectory: the training step of each checkpoint, in the order given (default: the last "
                        "number in each name)")
    p.add_argument("-o", "--output", metavar="HTML", help="write the self-contained HTML page")
    p.add_argument("--csv", metavar="FILE",
                   help="write the statistics table as CSV (trajectory: one row per checkpoint)")
    p.add_argument("--json", metavar="FILE", help="write models and statistics (or the trajectory) as JSON")
    p.add_argument("--plot", metavar="FILE",
                   help="write the metric-vs-accuracy figure (trajectory: alpha by layer over the steps); "
                        ".png or .svg")
    add_analysis_options(p, layers=False, progress=False)
    add_verbosity(p)
    p.epilog = ("examples:\n"
                "  hts compare models.csv -o series.html\n"
                "  hts compare a=a.safetensors b=b.safetensors c=c.safetensors d=d.safetensors \\\n"
                "      --accuracy a=71.2 --accuracy b=73.0 --accuracy c=74.1 --accuracy d=75.3\n"
                "  hts compare run/checkpoint-500 run/checkpoint-1000 run/checkpoint-1500 -o trajectory.html\n"
                "  hts compare 'run/checkpoint-*' --csv trajectory.csv\n")
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


def _is_trajectory(args: argparse.Namespace) -> bool:
    """Model paths and no accuracy anywhere: checkpoints of one run."""
    return not args.accuracy and not any(v.lower().endswith(".csv") for v in args.inputs)


def _steps(text: str | None, parser: argparse.ArgumentParser) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--steps {text!r}: give integers separated by commas")


def run_trajectory(args: argparse.Namespace, parser: argparse.ArgumentParser, options: dict) -> int:
    from ..report.trajectory import trajectory

    for flag in ("accuracy_column", "error_column", "series", "metrics"):
        if getattr(args, flag):
            parser.error(f"--{flag.replace('_', '-')} needs accuracies (--accuracy or a summary CSV); without "
                         "them hts compare follows the checkpoints' metrics over training")
    if args.plot or args.output:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise ImportError("the trajectory figures need matplotlib: pip install 'hts[plot]'") from None
    inputs = _inputs(args.inputs)
    if len(inputs) < 2 and not any(any(c in str(v) for c in "*?[") for v in inputs):
        parser.error("give at least two checkpoints for a trajectory, or --accuracy NAME=VALUE to compare "
                     "models against their accuracy (one model: hts analyze PATH)")
    result = trajectory(inputs, steps=_steps(args.steps, parser), **options)

    def plot(path):
        from ..report.trajectory_plots import alpha_by_layer_over_steps

        alpha_by_layer_over_steps(result, path=path)

    return _write(result, args, plot)


def _write(result, args: argparse.Namespace, plot) -> int:
    """Print the table, write -o/--csv/--json/--plot (``plot(path)`` draws the figure), say what was written."""
    print(result.format())
    written = []
    for path, write in ((args.output, result.to_html), (args.csv, result.to_csv), (args.json, result.to_json),
                        (args.plot, plot)):
        if path:
            write(path)
            written.append(path)
    if written:
        print(f"hts compare: wrote {', '.join(written)}")
    return 0


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .. import compare
    from ..report.compare import CompareInputError

    for option, path in (("-o", args.output), ("--csv", args.csv), ("--json", args.json), ("--plot", args.plot)):
        check_output_path(path, parser, option)
    options = analysis_options(args, parser)
    if _is_trajectory(args):
        return run_trajectory(args, parser, options)
    if args.steps is not None:
        parser.error("--steps is for a trajectory of checkpoints (no --accuracy)")
    if args.plot or args.output:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise ImportError("-o/--plot draw with matplotlib: pip install 'hts[plot]'") from None
    try:
        result = compare(_inputs(args.inputs), _accuracy(args.accuracy), series=args.series,
                         metrics=args.metrics, accuracy_column=args.accuracy_column,
                         error_column=args.error_column, **options)
    except CompareInputError as err:  # the same message in the command line's options
        raise ValueError(err.cli) from None

    def plot(path):
        from ..report import plots

        plots.series(result, path=path)

    return _write(result, args, plot)