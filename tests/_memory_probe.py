"""Peak memory of reading one model file or folder, measured in a fresh process
(``python tests/_memory_probe.py PATH``).

Imports hts, numpy and the format's library first (their pages are not the reader's), then reads the file the way
``hts analyze`` does: the tensor list (``read_file``; a folder, such as an Orbax checkpoint directory, through
``open_path`` as ``hts analyze DIR`` does), then every listed tensor's data, one at a time, dropped after use.
Prints one JSON line: ``base`` and ``peak`` (bytes of peak RSS, ``VmHWM``, before and after reading),
``largest`` (bytes of the largest tensor loaded), ``outcome`` (``"read"`` or ``"refused"``: a ``ModelFileError``)
and ``message`` (the error's text).

Two more modes measure what hts builds from the file (issue 19 item 9, the analysis output of a tensor flood):
``--analyze FILE`` runs ``hts.analyze(FILE)`` and touches its counts, summary and rows; ``--cli ARGS...`` runs
``hts ARGS...`` (e.g. ``describe FILE --format csv -o OUT``) in this process. Both import pandas before the base
is taken (the command line's tables need it) and print the same JSON line (``largest`` 0, ``tensors`` the rows).
``--serve FILE`` refreshes an ``hts serve`` sidecar of FILE once and prints ``peak``, ``held`` (``VmRSS`` after)
and ``page`` (bytes of its /analysis.json).
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys


def _rss(key: str = "VmHWM:") -> int:
    """The peak resident set of this process in bytes: ``VmHWM`` (``ru_maxrss`` would keep the parent's peak
    from before ``exec`` on Linux); ``key="VmRSS:"``: the resident set now."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key):
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


def main_built(mode: str, args: list[str]) -> None:
    import numpy  # noqa: F401
    import pandas  # noqa: F401

    import hts
    from hts.cli import main as cli_main

    base = _rss()
    outcome, message, count = "read", "", 0
    if mode == "--serve":  # the sidecar's cached result of one model: peak, and what stays held
        import gc

        from hts.serve import MetricsSidecar

        sidecar = MetricsSidecar(args, port=0, interval=3600, settle=0)
        sidecar.refresh()
        gc.collect()
        page = sidecar.page("/analysis.json")[0]
        print(json.dumps({"base": base, "peak": _rss(), "held": _rss("VmRSS:"), "page": len(page),
                          "error": sidecar.states()[0].error}))
        sidecar.close()
        return
    if mode == "--analyze":
        result = hts.analyze(args[0])
        count = len(result.rows)
        result.counts, result.summary, result.analysed  # noqa: B018 - what a caller looks at
        for _ in result.rows:
            pass
        del result
    else:
        code = cli_main(args)
        outcome = f"exit {code}"
    print(json.dumps({"base": base, "peak": _rss(), "largest": 0, "outcome": outcome, "message": message,
                      "tensors": count}))


if __name__ == "__main__":
    if sys.argv[1] in ("--analyze", "--cli", "--serve"):
        main_built(sys.argv[1], sys.argv[2:])
    else:
        main(sys.argv[1], sys.argv[2:])
