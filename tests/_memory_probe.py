"""Peak memory of reading one model file or folder, measured in a fresh process
(``python tests/_memory_probe.py PATH``).

Imports hts, numpy and the format's library first (their pages are not the reader's), then reads the file the way
``hts analyze`` does: the tensor list (``read_file``; a folder, such as an Orbax checkpoint directory, through
``open_path`` as ``hts analyze DIR`` does), then every listed tensor's data, one at a time, dropped after use.
Prints one JSON line: ``base`` and ``peak`` (bytes of peak RSS, ``VmHWM``, before and after reading),
``largest`` (bytes of the largest tensor loaded), ``outcome`` (``"read"`` or ``"refused"``: a ``ModelFileError``)
and ``message`` (the error's text).
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys


def _rss() -> int:
    """The peak resident set of this process in bytes: ``VmHWM`` (``ru_maxrss`` would keep the parent's peak
    from before ``exec`` on Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def main(path: str, preload: list[str]) -> None:
    import numpy  # noqa: F401

    import hts  # noqa: F401
    from hts.adapters.files import open_path, read_file
    from hts.errors import ModelFileError

    for name in preload:
        importlib.import_module(name)
    base = _rss()
    largest, outcome, message, count = 0, "read", "", 0
    try:
        tensors = open_path(path)[0] if os.path.isdir(path) else read_file(path)
        count = len(tensors)
        for t in tensors:
            if t.skip_reason:
                continue
            arr = t.load()
            largest = max(largest, int(getattr(arr, "nbytes", 0)))
            del arr
    except ModelFileError as err:
        outcome, message = "refused", str(err)
    print(json.dumps({"base": base, "peak": _rss(), "largest": largest, "outcome": outcome, "message": message,
                      "tensors": count}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
