"""Options and helpers shared by sub-commands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

__all__ = ["add_verbosity", "write_parts"]


def add_verbosity(parser: argparse.ArgumentParser) -> None:
    """``-q/--quiet`` (errors only) and ``-v/--verbose`` (debug log lines and tracebacks)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    group.add_argument("-v", "--verbose", action="store_true", help="debug log lines; tracebacks on errors")


def write_parts(parts: Iterable[str], output: str | None, *, escape: bool = False) -> None:
    """Write the text ``parts`` one after another to the file ``output`` (UTF-8) or to standard output: a long
    table is never held as one text. ``escape``: a lone surrogate (a tensor name from a JSON "\\ud800" escape, a
    file name that is not UTF-8) is written as its Python escape, as errors show it, instead of failing."""
    out = open(output, "w", encoding="utf-8") if output else sys.stdout
    try:
        for text in parts:
            out.write(text.encode("utf-8", "backslashreplace").decode("utf-8") if escape else text)
    finally:
        if out is not sys.stdout:
            out.close()
