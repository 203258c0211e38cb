"""``hts serve MODEL_PATH...``: the metrics sidecar (``hts.serve.MetricsSidecar``) until interrupted.

Shutdown (SIGTERM or Ctrl-C) is ordered: stop accepting connections, cancel the analysis in progress at its next
safe point, join the watcher, then exit 0. The process always leaves through ``os._exit`` after flushing its
output, so it never runs interpreter teardown while a thread may still be inside native code (that crashed
with SIGSEGV). A second signal while shutting down exits at once with 143 (SIGTERM) or 130 (Ctrl-C).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from ._analysis_args import add_analysis_options, analysis_options, seconds
from ._common import add_verbosity


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be in 0..65535 (0 picks a free one), got {value}")
    return value


def _settle(text: str) -> float:
    if text.strip() in ("0", "0.0"):
        return 0.0
    return seconds(text)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "serve", help="serve /metrics (Prometheus), /analysis.json, /healthz and /readyz for model files",
        description="Analyse model files or folders (read only) and re-analyse them when they change; serve "
                    "/metrics in Prometheus text format, /analysis.json, /healthz (liveness) and /readyz "
                    "(readiness: 503 until every model has a current good result). Listens on loopback unless "
                    "--host says otherwise. A path that does not exist yet is waited for. A bad, changing or "
                    "half-written file sets hts_model_error / hts_model_unstable and the last good result keeps "
                    "being served (hts_model_stale).",
        epilog="example: hts serve ckpt/model.safetensors --port 9108 --interval 30")
    p.add_argument("paths", nargs="+", metavar="MODEL_PATH", help="model file or folder (as for hts analyze)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 exposes the service to the network)")
    p.add_argument("--port", type=_port, default=9108, help="port in 0..65535 (default 9108; 0 picks a free one)")
    p.add_argument("--interval", type=seconds, default=60.0, metavar="S",
                   help="seconds between checks of the files (default 60)")
    p.add_argument("--settle", type=_settle, default=2.0, metavar="S",
                   help="analyse files only once they have been left unmodified for S seconds (default 2)")
    p.add_argument("--per-layer", action="store_true",
                   help="also export per-layer alpha and alpha_weighted series (one per layer)")
    p.add_argument("--shutdown-timeout", type=seconds, default=30.0, metavar="S",
                   help="on SIGTERM/Ctrl-C, wait up to S seconds for a running analysis to stop before leaving "
                        "anyway (default 30)")
    add_analysis_options(p, layers=False, progress=False)
    add_verbosity(p)
    p.set_defaults(func=lambda args: run(args, p))


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..serve import MetricsSidecar

    options = analysis_options(args, parser)
    threads, time_budget = options.pop("threads"), options.pop("time_budget")
    try:
        sidecar = MetricsSidecar(args.paths, host=args.host, port=args.port, interval=args.interval,
                                 per_layer=args.per_layer, threads=threads, time_budget=time_budget,
                                 settle=args.settle, analyze_options=options)
    except OSError as err:
        print(f"hts: error: {err.strerror or err}", file=sys.stderr)
        return 1
    host, port = sidecar.address
    for path in args.paths:
        if not os.path.exists(path):
            print(f"hts serve: {path} does not exist yet: waiting for it (checked every {args.interval:g} s)",
                  file=sys.stderr)
    print(f"hts serve: http://{host}:{port}/metrics (Ctrl-C to stop)", file=sys.stderr, flush=True)
    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum, frame) -> None:
        received.append(signum)
        if len(received) > 1:  # a second signal: leave now, without interpreter teardown
            _leave(128 + signum)
        stop.set()

    # the HTTP loop and the analysis share the GIL: hand it over every 1 ms (not 5) so a scrape waits less
    # behind the analysis' Python parts; this process does nothing else
    sys.setswitchinterval(0.001)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sidecar.start()
    while not stop.wait(3600):
        pass
    clean = sidecar.close(timeout=args.shutdown_timeout)
    if not clean:
        logging.getLogger("hts").warning("hts serve: the analysis did not stop within %g s; leaving anyway",
                                         args.shutdown_timeout)
    _leave(0)
    return 0  # not reached


def _leave(code: int) -> None:
    """Flush and exit without interpreter teardown (threads may still be inside native code)."""
    try:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)
