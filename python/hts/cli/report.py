"""``hts report PATH -o report.html``: analyse a model file or folder and write the self-contained HTML report."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ._analysis_args import add_analysis_options, analysis_options, analyze_path, check_output_path, exit_status
from ._common import add_verbosity
from ._model_args import add_model_argument, model_path

__all__ = ["add_parser"]

logger = logging.getLogger("hts")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="analyse a model and write a self-contained HTML report",
        description="Analyse a model and write one self-contained HTML file (inline CSS and SVG, no network): "
                    "inventory, summary and label counts, alpha by depth, the worst layers with their ESDs, "
                    "every layer (sortable), skipped layers with reasons, options and hts version.")
    add_model_argument(p)
    p.add_argument("-o", "--output", default="report.html", metavar="HTML",
                   help="HTML file to write (default: report.html)")
    p.add_argument("--worst", type=int, default=8, metavar="K", help="ESD figures for the K worst layers (8)")
    p.add_argument("--title", help="page title (default: from PATH)")
    p.add_argument("--json", metavar="FILE", help="also write the analysis as JSON")
    add_analysis_options(p)
    add_verbosity(p)
    p.set_defaults(func=lambda args: run(args, p))


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.worst < 0:
        parser.error("--worst must be >= 0")
    options = analysis_options(args, parser)
    path = model_path(args, parser)
    check_output_path(args.output, parser)
    check_output_path(args.json, parser, "--json")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError("hts report draws its figures with matplotlib: pip install 'hts[plot]'") from None
    analysis = analyze_path(path, args, options)
    logger.info("%r", analysis)
    analysis.to_html(args.output, title=args.title, source=Path(path).name, worst=args.worst)
    if args.json:
        analysis.to_json(args.json)
    print(f"hts report: wrote {args.output}" + (f" and {args.json}" if args.json else ""))
    return exit_status(analysis, path)
