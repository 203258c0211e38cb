"""The exceptions hts raises on purpose, all importable from ``hts``.

Every one subclasses a builtin, so code that already catches ``ValueError`` or ``OSError`` keeps working.
"""

from __future__ import annotations

__all__ = ["Cancelled", "HTSError", "ModelFileError"]


class HTSError(Exception):
    """Base class of hts's own exceptions."""


class ModelFileError(HTSError, ValueError):
    """A model file or folder that cannot be read: missing, truncated, malformed, or unsafe.

    The message names the file (and the tensor, when one is at fault). ``path`` and ``tensor`` hold them.
    """

    def __init__(self, path: object, message: str, *, tensor: str | None = None) -> None:
        self.path = str(path)
        self.tensor = tensor
        where = f"{self.path}" + (f", tensor {tensor!r}" if tensor else "")
        super().__init__(f"{where}: {message}")


class Cancelled(HTSError):
    """An analysis stopped before its end because the caller asked it to (cancel event, progress callback
    returning False, or time budget).

    ``done`` and ``total`` hold how many of the analysable layers were finished (None when not known).
    """

    def __init__(self, message: str, *, done: int | None = None, total: int | None = None) -> None:
        self.done = done
        self.total = total
        super().__init__(message)
