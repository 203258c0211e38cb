"""The analysis options every command that analyses shares (analyze, report, compare, serve, zoo): one argument
group with every ``hts.analyze`` option, checked before any work starts."""

from __future__ import annotations

import argparse
import contextlib
import math

__all__ = ["add_analysis_options", "add_size_gates", "seconds", "analysis_options", "analyze_path", "exit_status", "check_output_path"]

EPILOG = """examples:
  hts analyze model.safetensors
  hts analyze Llama-2-7b-hf/ --layers 'dense,-lm_head' --precision float32 -o layers.csv --format csv
  hts analyze resnet.pth --conv-method fft --conv-input-size 32 --mp-fit
  hts report model.safetensors -o report.html --randomize --seed 1
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def seconds(text: str) -> float:
    """argparse type: a finite number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds > 0, got {text}")
    return value


def _input_size(text: str) -> tuple[int, int]:
    parts = text.lower().replace("×", "x").split("x")
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or N1xN2, got {text!r}") from None
    if len(sizes) == 1:
        sizes *= 2
    if len(sizes) != 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected N or N1xN2 with positive sizes, got {text!r}")
    return sizes[0], sizes[1]


def add_size_gates(group) -> None:
    """--min-evals, --max-evals, --max-N (also used by hts describe, which applies the same gates)."""
    group.add_argument("--min-evals", type=_positive_int, default=8, metavar="K",
                       help="skip layers with fewer eigenvalues (default 8)")
    group.add_argument("--max-evals", type=_positive_int, default=15000, metavar="K",
                       help="skip layers with more eigenvalues (default 15000)")
    group.add_argument("--max-N", type=_positive_int, default=50000, metavar="N",
                       help="skip layers whose larger side exceeds N (default 50000)")


def add_analysis_options(parser: argparse.ArgumentParser, *, layers: bool = True, progress: bool = True,
                         time_budget: bool = True) -> None:
    """Add the shared group (and ``--layers`` / ``--no-progress`` / ``--time-budget`` where the command takes
    them)."""
    from ..fitting import FIX_FINGERS

    if parser.epilog is None:
        parser.epilog = EPILOG
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
    g = parser.add_argument_group("analysis options (those of hts.analyze)")
    if layers:
        g.add_argument("--layers", metavar="FILTER",
                       help="comma-separated layer ids, layer types (dense, conv2d, conv1d, embedding) or shell "
                            "patterns on names; a leading '-' excludes, e.g. 'dense,-lm_head' or '-*.mlp.*'")
    g.add_argument("--pool", action=argparse.BooleanOptionalAction, default=True,
                   help="Conv2D: one row per layer from the pooled slices (default) or one per slice")
    g.add_argument("--conv-method", choices=("slices", "stacked", "fft"), default="slices",
                   help="how Conv2D kernels become matrices: WeightWatcher's k*k slices (default), one stacked "
                        "matrix, or the exact convolution-operator spectrum (fft)")
    g.add_argument("--conv-input-size", type=_input_size, metavar="N|N1xN2",
                   help="input size for --conv-method fft (default: the kernel size)")
    g.add_argument("--normalize", action="store_true", help="use X = W^T W / N (eigenvalues and norms / N)")
    add_size_gates(g)
    g.add_argument("--precision", choices=("float64", "float32", "auto"), default="float64",
                   help="eigenvalue precision (default float64, as WeightWatcher; float32 is faster; auto: "
                        "float32 for layers whose smaller side is at least 1024)")
    g.add_argument("--fix-fingers", choices=[f for f in FIX_FINGERS if f], default=None,
                   help="WeightWatcher's fix_fingers: clip_xmax refits with the largest eigenvalues removed; "
                        "xmin_peak searches xmin only up to the ESD's peak (see --xmin-max)")
    g.add_argument("--xmin-max", type=float, default=None, metavar="X",
                   help="with --fix-fingers xmin_peak or --fit e_tpl: the largest xmin considered (default: from "
                        "the peak)")
    g.add_argument("--fit", type=str.lower, choices=("pl", "tpl", "e_tpl"), default="pl",
                   help="pl: power law (default); tpl: truncated power law x^-alpha e^(-Lambda x) (adds a Lambda "
                        "column); e_tpl: tpl with the xmin_peak search (WeightWatcher's fit='TPL'/'E_TPL')")
    g.add_argument("--detx", "--erg", dest="detX", action="store_true",
                   help="add WeightWatcher's detX/ERG columns (detX_num, detX_val, num_ERG_spikes, ERG_gap)")
    g.add_argument("--fit-tests", nargs="?", const=True, default=False, type=_positive_int, metavar="R",
                   help="add goodness-of-fit columns: bootstrap p-value of the power law (R replicates, "
                        "default 1000), likelihood-ratio tests vs exponential/stretched exponential/lognormal/"
                        "truncated power law, "
                        "best_fit and a plain-words verdict")
    g.add_argument("--vectors", action="store_true",
                   help="add WeightWatcher's eigenvector localisation columns (a full eigendecomposition)")
    g.add_argument("--tolerance", type=_non_negative, default=1e-6, metavar="T",
                   help="weak_rank_loss counts the eigenvalues below T (default 1e-6, as WeightWatcher)")
    g.add_argument("--inverse", action="store_true",
                   help="analyse the inverse ESD 1/lambda (WeightWatcher's inverse=True; needs float64)")
    g.add_argument("--intra", action="store_true",
                   help="one row per pair of consecutive layers: the spectrum of W0*S*W1 (WeightWatcher's intra)")
    g.add_argument("--no-sparsify", dest="sparsify", action="store_false",
                   help="with --intra: X = W0*W1, without the random 0/1 mask S")
    g.add_argument("--start-ids", type=_non_negative_int, default=0, metavar="S",
                   help="number the layer ids from S (WeightWatcher's start_ids; default 0: a module's root is 0, "
                        "a file's first tensor 1)")
    g.add_argument("--mp-fit", action="store_true", help="add the Marchenko-Pastur bulk fit columns")
    g.add_argument("--randomize", action="store_true", help="add the ESD of the shuffled weights")
    g.add_argument("--randomize-precision", choices=("float32", "float64"), default="float32",
                   help="precision of the shuffled weights' eigenvalues (with --randomize; default float32)")
    g.add_argument("--seed", type=int, default=0, help="seed of the shuffles for --randomize (default 0)")
    g.add_argument("--threads", type=_positive_int, metavar="N",
                   help="native threads (default: the cores this process may use)")
    if time_budget:
        g.add_argument("--time-budget", type=seconds, metavar="S",
                       help="stop an analysis after S seconds (an error; nothing partial is written)")
    if progress:
        g.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines")


def analysis_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict:
    """The ``hts.analyze`` keyword arguments of the parsed options; usage errors (exit 2) for combinations."""
    if args.randomize and args.conv_method == "fft":
        parser.error("--randomize is not available with --conv-method fft")
    if args.conv_input_size is not None and args.conv_method != "fft":
        parser.error("--conv-input-size needs --conv-method fft")
    if args.xmin_max is not None and args.fix_fingers != "xmin_peak" and args.fit != "e_tpl":
        parser.error("--xmin-max needs --fix-fingers xmin_peak or --fit e_tpl")
    if args.fit != "pl" and args.fix_fingers == "clip_xmax":
        parser.error(f"--fit {args.fit} is not available with --fix-fingers clip_xmax")
    if args.inverse and (args.randomize or args.vectors or args.normalize or args.precision != "float64"):
        parser.error("--inverse is not available with --randomize, --vectors, --normalize or --precision other "
                     "than float64")
    if args.intra and (args.randomize or args.vectors or args.inverse or args.conv_method != "slices"):
        parser.error("--intra is not available with --randomize, --vectors, --inverse or --conv-method other than "
                     "slices")
    if not args.sparsify and not args.intra:
        parser.error("--no-sparsify needs --intra")
    if args.min_evals > args.max_evals:
        parser.error(f"--min-evals {args.min_evals} is larger than --max-evals {args.max_evals}")
    return dict(pool=args.pool, conv_method=args.conv_method, conv_input_size=args.conv_input_size,
                normalize=args.normalize, min_evals=args.min_evals, max_evals=args.max_evals, max_N=args.max_N,
                precision=args.precision, fix_fingers=args.fix_fingers, xmin_max=args.xmin_max, detX=args.detX,
                fit_tests=args.fit_tests, vectors=args.vectors, mp_fit=args.mp_fit,
                randomize=args.randomize, randomize_precision=args.randomize_precision, seed=args.seed,
                threads=args.threads, **({"time_budget": args.time_budget} if hasattr(args, "time_budget") else {}),
                **{k: v for k, v in (("tolerance", args.tolerance), ("inverse", args.inverse),
                                     ("start_ids", args.start_ids), ("intra", args.intra),
                                     ("sparsify", args.sparsify), ("fit", args.fit.upper()))
                   if v != _DEFAULTS[k]})


#: Options passed on only when changed, so that the options of studies and servers set up before they existed
#: stay the same.
_DEFAULTS = {"tolerance": 1e-6, "inverse": False, "start_ids": 0, "intra": False, "sparsify": True, "fit": "PL"}


def check_output_path(path: str | None, parser: argparse.ArgumentParser, option: str = "-o") -> None:
    """Fail before any work when ``path`` cannot be written (its folder is missing or not writable)."""
    import os

    if not path:
        return
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if os.path.isdir(path):
        parser.error(f"{option} {path}: is a folder, not a file")
    if not os.path.isdir(folder):
        parser.error(f"{option} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        parser.error(f"{option} {path}: not writable")


def analyze_path(path: str, args: argparse.Namespace, options: dict):
    """``hts.analyze`` of the model at ``path`` with the command's --split-fused, --layers, --base and progress
    options (a bar or progress lines unless --no-progress or --quiet). A --layers filter that keeps nothing
    raises ``ValueError`` before any analysis; an unreadable --base raises ``hts.ModelFileError`` naming it."""
    import hts

    from .._progress import make_progress
    from ..selection import parse_layer_filter, select

    inv = hts.open(path, split_fused=args.split_fused)
    base = getattr(args, "base", None)
    if base is not None:
        options = dict(options, base=hts.open(base, split_fused=args.split_fused))
    layers = parse_layer_filter(getattr(args, "layers", None))
    if layers is not None and not select(inv.tensors, layers, warn=False):
        raise ValueError(f"--layers {args.layers!r} keeps none of the {len(inv)} tensors of {path}")
    progress = make_progress(not (args.no_progress or args.quiet))
    with _interrupt_cancels() as cancel:
        try:
            return hts.analyze(inv, layers=layers, progress=progress, cancel=cancel, **options)
        except hts.Cancelled:
            if cancel.is_set():
                raise KeyboardInterrupt from None  # main() says "interrupted" and exits 130
            raise
        finally:
            if progress is not None:
                progress.close()


@contextlib.contextmanager
def _interrupt_cancels():
    """Ctrl-C sets a cancel event instead of raising inside the analysis, so the kernel stops at its next safe
    point (within one LAPACK call) and no worker is left running; a second Ctrl-C interrupts at once."""
    import signal
    import threading

    cancel = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield cancel
        return

    def on_interrupt(signum, frame):
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield cancel
    finally:
        signal.signal(signal.SIGINT, previous)


def exit_status(analysis, path: str) -> int:
    """0, or 1 with one line on stderr when some tensor data could not be read (docs/formats.md: what is
    unreadable exits 1, even though the other layers' results were written) or nothing was analysed."""
    import sys

    bad = analysis.unreadable
    if bad:
        first = bad[0]
        print(f"hts: error: {path}: {len(bad)} layer(s) could not be read (first: {first['key']}: "
              f"{first['reason']})", file=sys.stderr)
        return 1
    if not analysis.analysed:
        reasons: dict = {}
        for reason in analysis.rows.reasons():  # the first two reasons, without making a flood's rows
            if reason:
                reasons[reason] = None
                if len(reasons) == 2:
                    break
        reasons = list(reasons)
        print(f"hts: error: {path}: no layer was analysed ({len(analysis.rows)} listed, none analysable"
              + (f"; e.g. {'; '.join(reasons[:2])}" if reasons else "") + ")", file=sys.stderr)
        return 1
    return 0
