"""Options and helpers shared by sub-commands."""

from __future__ import annotations

import argparse

__all__ = ["add_verbosity"]


def add_verbosity(parser: argparse.ArgumentParser) -> None:
    """``-q/--quiet`` (errors only) and ``-v/--verbose`` (debug log lines and tracebacks)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    group.add_argument("-v", "--verbose", action="store_true", help="debug log lines; tracebacks on errors")
