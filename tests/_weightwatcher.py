"""WeightWatcher 0.7.7 as the parity tests run it: skipped unless installed at that version, quiet (no log lines,
no prints, no warnings) and on one BLAS thread."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings

import pytest


@contextlib.contextmanager
def weightwatcher_077(*also_needs: tuple[str, str]):
    """Yield the ``weightwatcher`` module; ``also_needs`` = (module, reason) pairs skipped on when missing."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pytest.importorskip("torch", reason="needs torch==2.13.0")
        ww = pytest.importorskip("weightwatcher", reason="needs the compare extra")
        threadpoolctl = pytest.importorskip("threadpoolctl", reason="needs the compare extra")
        for module, reason in also_needs:
            pytest.importorskip(module, reason=reason)
    if ww.__version__ != "0.7.7":
        pytest.skip(f"parity is defined against weightwatcher 0.7.7, found {ww.__version__}")
    logger = logging.getLogger("weightwatcher")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), threadpoolctl.threadpool_limits(1):
            warnings.simplefilter("ignore")
            yield ww
    finally:
        logger.setLevel(level)
