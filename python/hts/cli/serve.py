"""``hts serve MODEL_PATH...``: the metrics sidecar (``hts.serve.MetricsSidecar``) until interrupted."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from ._common import add_verbosity


def add_parser(sub) -> None:
    p = sub.add_parser(
        "serve", help="serve /metrics (Prometheus), /analysis.json and /healthz for model files",
        description="Analyse model files or folders (read only) and re-analyse them when they change; serve "
                    "/metrics in Prometheus text format, /analysis.json and /healthz. Listens on loopback "
                    "unless --host says otherwise. A bad or half-written file sets hts_model_error and the "
                    "last good result keeps being served.")
    p.add_argument("paths", nargs="+", metavar="MODEL_PATH", help="model file or folder (as for hts analyze)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 exposes the service to the network)")
    p.add_argument("--port", type=int, default=9108, help="port (default 9108; 0 picks a free one)")
    p.add_argument("--interval", type=float, default=60.0, metavar="S",
                   help="seconds between checks of the files (default 60)")
    p.add_argument("--per-layer", action="store_true",
                   help="also export per-layer alpha and alpha_weighted series (one per layer)")
    p.add_argument("--threads", type=int, default=None, help="native threads per analysis (default: all cores)")
    p.add_argument("--time-budget", type=float, default=None, metavar="S",
                   help="give up an analysis after S seconds (reported as an error)")
    add_verbosity(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..serve import MetricsSidecar

    sidecar = MetricsSidecar(args.paths, host=args.host, port=args.port, interval=args.interval,
                             per_layer=args.per_layer, threads=args.threads, time_budget=args.time_budget)
    host, port = sidecar.address
    print(f"hts serve: http://{host}:{port}/metrics (Ctrl-C to stop)", file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, _terminate)
    sidecar.start()
    try:
        threading.Event().wait()  # until Ctrl-C or SIGTERM
    except SystemExit:
        pass
    finally:
        sidecar.close()
    return 0


def _terminate(signum, frame) -> None:
    raise SystemExit(0)
