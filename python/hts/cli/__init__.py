"""The ``hts`` command line: a thin layer over the public API.

Each sub-command lives in its own module with ``add_parser(subparsers)`` that registers it and sets
``func(args) -> int``. Exit codes: 0 success, 1 a model or file that could not be read (one-line message;
the traceback only with ``--verbose``), 2 a usage error (argparse's convention).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

__all__ = ["main"]

#: Sub-command modules, in the order ``hts --help`` lists them.
COMMANDS = ("describe", "analyze", "report", "compare", "diff", "smooth", "zoo", "serve")

logger = logging.getLogger("hts")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="hts",
        description="Heavy-tailed spectral analysis of trained neural-network weights, no data needed.",
    )
    parser.add_argument("--version", action="version", version=f"hts {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"{__name__}.{name}":  # a sub-command not written yet
                continue
            raise
        module.add_parser(sub)
    return parser


def configure_logging(args: argparse.Namespace):
    """Log lines to stderr for the command line only (the library never configures logging). Returns a function
    that undoes it (``main`` calls it on return, so an in-process call leaves the ``hts`` logger as it was)."""
    level = logging.WARNING
    if getattr(args, "verbose", False):
        level = logging.DEBUG
    elif getattr(args, "quiet", False):
        level = logging.ERROR
    for old in [h for h in logger.handlers if getattr(h, "_hts_cli", False)]:
        logger.removeHandler(old)  # main() called again in the same process (tests, embedding)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("hts: %(levelname)s: %(message)s"))
    handler._hts_cli = True  # type: ignore[attr-defined]
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)

    def undo() -> None:
        logger.removeHandler(handler)
        logger.setLevel(previous)

    return undo


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    undo_logging = configure_logging(args)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("hts: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `hts analyze ... | head`
        return 0
    except (OSError, ValueError, TypeError, ImportError, RuntimeError) as err:
        if getattr(args, "verbose", False):
            raise
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"hts: error: {message}", file=sys.stderr)
        return 1
    finally:
        undo_logging()
