"""The ``hts.analyze`` options that ``hts report`` and ``hts compare`` share (named as in ``hts analyze``)."""

from __future__ import annotations

import argparse

__all__ = ["add_analysis_options", "analysis_options", "analyze_path", "exit_status"]


def add_analysis_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("analysis options")
    group.add_argument("--pool", action=argparse.BooleanOptionalAction, default=True,
                       help="Conv2D: one row per layer from the pooled slices (default) or one per slice")
    group.add_argument("--conv-method", choices=("slices", "stacked", "fft"), default="slices")
    group.add_argument("--mp-fit", action="store_true", help="add the Marchenko-Pastur bulk fit")
    group.add_argument("--randomize", action="store_true", help="add the ESD of the shuffled weights")
    group.add_argument("--precision", choices=("float64", "float32"), default="float64")
    group.add_argument("--randomize-precision", choices=("float32", "float64"), default="float32",
                       help="precision of the shuffled weights' eigenvalues (with --randomize)")
    group.add_argument("--threads", type=int, metavar="N",
                       help="native threads (default: the cores this process may use)")


def analysis_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict:
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    return dict(pool=args.pool, conv_method=args.conv_method, mp_fit=args.mp_fit, randomize=args.randomize,
                precision=args.precision, randomize_precision=args.randomize_precision, threads=args.threads)


def analyze_path(path: str, args: argparse.Namespace, options: dict):
    """``hts.analyze`` of the model at ``path`` with the command's --split-fused, --layers and progress
    options (a bar or progress lines unless --no-progress or --quiet)."""
    import hts

    from ._model_args import layer_filter
    from ._progress import make_progress

    inv = hts.open(path, split_fused=args.split_fused)
    progress = make_progress(not (args.no_progress or args.quiet))
    try:
        return hts.analyze(inv, layers=layer_filter(args.layers, inv), progress=progress, **options)
    finally:
        if progress is not None:
            progress.close()


def exit_status(analysis, path: str) -> int:
    """0, or 1 with one line on stderr when some tensor data could not be read (docs/formats.md: what is
    unreadable exits 1, even though the other layers' results were written)."""
    import sys

    bad = analysis.unreadable
    if not bad:
        return 0
    first = bad[0]
    print(f"hts: error: {path}: {len(bad)} layer(s) could not be read (first: {first['key']}: {first['reason']})",
          file=sys.stderr)
    return 1
