"""hts — heavy-tailed spectral analysis of trained neural-network weights, no data needed.

>>> import numpy as np, hts
>>> w = np.random.default_rng(0).standard_t(3, size=(512, 256))
>>> fit = hts.spectra.fit_power_law(hts.spectra.eigenvalues(w))
>>> fit.status
'success'

Importing hts loads numpy and the compiled kernel only: no torch, pandas or matplotlib, no output, and no
logging configuration (the ``hts`` logger has a ``NullHandler``; configure logging in your application).
"""

from __future__ import annotations

import logging as _logging

from . import spectra
from ._native import _core as _kernel
from .analysis import Analysis, analyze
from .errors import Cancelled, HTSError, ModelFileError
from .inventory import Inventory
from .inventory import open_model as open  # noqa: A001 - hts.open(path), like the builtin but for models

_logging.getLogger(__name__).addHandler(_logging.NullHandler())

__version__: str = _kernel.__version__  # set at build time from pyproject.toml

__all__ = ["Analysis", "Cancelled", "HTSError", "Inventory", "ModelFileError", "__version__", "analyze", "compare",
           "datasets", "distances", "open", "plot", "spectra", "study", "svd_sharpness", "svd_smoothing", "trajectory"]


def __getattr__(name: str):
    """``hts.compare``, ``hts.trajectory``, ``hts.plot``, ``hts.datasets``, ``hts.distances``, ``hts.study``, ``hts.svd_smoothing`` and ``hts.svd_sharpness`` load on first use (the report modules;
    matplotlib only when drawing; pandas only when a table is read)."""
    if name == "compare":
        from .report.compare import compare

        return compare
    if name == "trajectory":
        from .report.trajectory import trajectory

        return trajectory
    if name == "plot":
        from .report import plots

        return plots
    if name == "study":
        from .studies import study

        return study
    if name == "distances":
        from .weight_distances import distances

        return distances
    if name in ("svd_smoothing", "svd_sharpness"):
        from . import smoothing

        return getattr(smoothing, name)
    if name == "datasets":  # import_module: "from . import datasets" would re-enter this __getattr__ forever
        import importlib

        return importlib.import_module(f"{__name__}.datasets")
    raise AttributeError(f"module 'hts' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
