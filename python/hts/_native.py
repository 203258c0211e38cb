"""Loads the compiled kernel ``hts._core`` (private)."""

from __future__ import annotations

try:
    from . import _core
except ImportError as first_error:  # pragma: no cover - depends on how the package was installed
    # The extension finds scipy-openblas32's library through its RPATH; when a non-standard install layout
    # breaks that, load the library by its full path first and try once more.
    try:
        import ctypes
        import glob
        import os

        import scipy_openblas32

        for lib in glob.glob(os.path.join(scipy_openblas32.get_lib_dir(), "*scipy_openblas*")):
            ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)
        from . import _core
    except Exception:
        raise ImportError(
            f"hts._core could not be loaded ({first_error}); reinstall hts with: pip install ."
        ) from first_error

__all__ = ["_core"]
