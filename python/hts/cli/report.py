"""``hts report PATH -o report.html``: analyse a model file or folder and write the self-contained HTML report."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ._common import add_verbosity

__all__ = ["add_parser", "add_analysis_options", "analysis_options"]

logger = logging.getLogger("hts")


def add_analysis_options(parser: argparse.ArgumentParser) -> None:
    """The ``hts.analyze`` options a report needs (the rest keep their defaults)."""
    group = parser.add_argument_group("analysis")
    group.add_argument("--layers", nargs="+", metavar="SEL",
                       help="layer ids, -ids to exclude, types (dense, conv2d), names, -name to exclude")
    group.add_argument("--conv-method", choices=("slices", "stacked", "fft"), default="slices")
    group.add_argument("--mp-fit", action="store_true", help="add the Marchenko-Pastur bulk fit")
    group.add_argument("--randomize", action="store_true", help="add the ESD of the shuffled weights")
    group.add_argument("--precision", choices=("float64", "float32"), default="float64")
    group.add_argument("--threads", type=int, default=None, help="native threads (default: all cores)")


def analysis_options(args: argparse.Namespace) -> dict:
    layers = None
    if args.layers:
        layers = [int(s) if s.lstrip("-").isdigit() else s for s in args.layers]
    return dict(layers=layers, conv_method=args.conv_method, mp_fit=args.mp_fit, randomize=args.randomize,
                precision=args.precision, threads=args.threads)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="analyse a model and write a self-contained HTML report",
        description="Analyse a model (a .safetensors/.pth/.npz file or a folder) and write one self-contained "
                    "HTML file: inventory, summary, alpha by depth, the worst layers' ESDs, every layer.")
    p.add_argument("path", metavar="PATH", help="model file or folder")
    p.add_argument("-o", "--output", default="report.html", help="HTML file to write (default: report.html)")
    p.add_argument("--worst", type=int, default=8, metavar="K", help="ESD figures for the K worst layers (8)")
    p.add_argument("--title", help="page title (default: from PATH)")
    p.add_argument("--json", metavar="FILE", help="also write the analysis as JSON")
    add_analysis_options(p)
    add_verbosity(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import analyze

    if args.worst < 0:
        raise ValueError(f"--worst must be >= 0, got {args.worst}")
    analysis = analyze(args.path, **analysis_options(args))
    logger.info("%r", analysis)
    analysis.to_html(args.output, title=args.title, source=Path(args.path).name, worst=args.worst)
    if args.json:
        analysis.to_json(args.json)
    logger.info("wrote %s", args.output)
    return 0
