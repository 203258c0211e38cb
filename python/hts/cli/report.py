"""``hts report PATH -o report.html``: analyse a model file or folder and write the self-contained HTML report."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from ._analysis_args import add_analysis_options, analysis_options, analyze_path, check_output_path, exit_status
from ._common import add_verbosity
from ._model_args import add_base_option, add_model_argument, model_path

__all__ = ["add_parser"]

logger = logging.getLogger("hts")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="analyse a model and write a self-contained HTML report",
        description="Analyse a model and write one self-contained HTML file (inline CSS and SVG, no network): "
                    "inventory, summary and label counts, alpha by depth, the worst layers with their ESDs, "
                    "every layer (sortable), skipped layers with reasons, options and hts version.")
    add_model_argument(p)
    add_base_option(p)
    p.add_argument("-o", "--output", default="report.html", metavar="HTML",
                   help="HTML file to write (default: report.html)")
    p.add_argument("--worst", type=int, default=8, metavar="K", help="ESD figures for the K worst layers (8)")
    p.add_argument("--title", help="page title (default: from PATH)")
    p.add_argument("--json", metavar="FILE", help="also write the analysis as JSON")
    p.add_argument("--savefig", metavar="DIR",
                   help="also write WeightWatcher-style figures of every analysed layer into DIR: ESD log-log "
                        "with the power-law fit, ESD on linear axes, KS distance and alpha against xmin, the "
                        "Marchenko-Pastur fit, and (with --randomize) the randomized ESD with its max line")
    p.add_argument("--savefig-format", choices=("png", "svg"), default="png",
                   help="file format of the --savefig figures (png)")
    p.add_argument("--savefig-deltas", action="store_true",
                   help="with --savefig: also the eigenvalue-gap figures (log10 of consecutive gaps, and their "
                        "density: WeightWatcher's deltas=True)")
    add_analysis_options(p)
    add_verbosity(p)
    p.set_defaults(func=lambda args: run(args, p))


def _check_figure_dir(path: Path, parser: argparse.ArgumentParser) -> None:
    """Fail before the analysis when --savefig names a file, or a folder that cannot be created or written."""
    if path.exists() and not path.is_dir():
        parser.error(f"--savefig {path}: exists and is not a folder")
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        parser.error(f"--savefig {path}: {probe} is not writable")


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.worst < 0:
        parser.error("--worst must be >= 0")
    options = analysis_options(args, parser)
    path = model_path(args, parser)
    check_output_path(args.output, parser)
    check_output_path(args.json, parser, "--json")
    if args.savefig_deltas and not args.savefig:
        parser.error("--savefig-deltas needs --savefig DIR")
    if args.savefig:
        _check_figure_dir(Path(args.savefig), parser)
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
    if args.savefig:
        from ..report.layer_figures import DELTA_FIGURES, FIGURES, save_layer_figures

        figures = FIGURES + (DELTA_FIGURES if args.savefig_deltas else ())
        paths = save_layer_figures(analysis, args.savefig, figures=figures, fmt=args.savefig_format)
        print(f"hts report: wrote {len(paths)} figures of {len(analysis.analysed)} layers into {args.savefig}")
    return exit_status(analysis, path)
