"""The loop behind bench/fuzz_onnx.py, fuzz_keras.py and fuzz_flax.py: generate hostile model files with a
structure-aware generator from tests/, open and load each (tests/_fuzz_check.py), and write a Markdown report.

Allowed outcomes per input: read, or ``hts.ModelFileError`` naming the file; Python allocation (tracemalloc)
<= the format's multiple of the input's size + 4 MiB; at most ``--hang`` seconds. Anything else stops the run
and keeps the input in bench/results/fuzz_<format>_failure/.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import tracemalloc
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from _common import markdown_table, write_report  # noqa: E402

import _fuzz_check as check  # noqa: E402
from _fuzz_gguf import RandomSource  # noqa: E402


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def run(fmt: str, title: str, generate, widen: float, doc: str, per_tensor: float = 0.0) -> None:
    """``generate(source) -> {file name: bytes}`` (the first name is the model file, or, ending in "/", the
    model folder; names may hold "/"); ``per_tensor``: allowed allocation × the largest tensor loaded, for
    formats whose tensors may exceed their stored bytes (``_fuzz_check.check_bounded``)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--analyze-every", type=int, default=20, help="run hts.analyze on every N-th input")
    parser.add_argument("--hang", type=int, default=30, help="seconds one input may take")
    parser.add_argument("--time-budget", type=float, default=0, metavar="S",
                        help="stop after S seconds (0: no limit); the report says how many inputs ran")
    parser.add_argument("--out", default=os.path.join(HERE, "results", f"fuzz_{fmt}.md"))
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # "no weight scale found" and the like, thousands of times
    rng = random.Random(args.seed)
    counts: Counter = Counter()
    slowest = 0.0
    signal.signal(signal.SIGALRM, _alarm)
    t_start = time.perf_counter()
    done = 0
    with tempfile.TemporaryDirectory() as folder:
        tracemalloc.start()
        for i in range(args.count):
            if args.time_budget and time.perf_counter() - t_start > args.time_budget:
                break
            done += 1
            files = generate(RandomSource(rng))
            for name in os.listdir(folder):
                old = os.path.join(folder, name)
                shutil.rmtree(old) if os.path.isdir(old) and not os.path.islink(old) else os.unlink(old)
            for name, blob in files.items():  # "a/b": b in folder a; "a/": the folder a itself
                target = os.path.join(folder, name)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                if not name.endswith("/"):
                    with open(target, "wb") as f:
                        f.write(blob)
            path = os.path.join(folder, next(iter(files)).rstrip("/"))
            t0 = time.perf_counter()
            signal.alarm(args.hang)
            try:
                counts[check.check_bounded(path, widen, analyze=i % args.analyze_every == 0,
                                           size=sum(len(b) for b in files.values()), per_tensor=per_tensor)] += 1
            except BaseException:
                keep = os.path.join(HERE, "results", f"fuzz_{fmt}_failure")
                shutil.rmtree(keep, ignore_errors=True)
                shutil.copytree(folder, keep)
                print(f"input {i} failed; kept in {keep}", file=sys.stderr)
                raise
            finally:
                signal.alarm(0)
            slowest = max(slowest, time.perf_counter() - t0)
        tracemalloc.stop()
    total = time.perf_counter() - t_start
    table = markdown_table(["engine", "inputs", "read", "refused (ModelFileError)", "other outcomes",
                            "slowest input (ms)", "total (s)"],
                           [[f"generated (tests/_fuzz_{fmt}.py)", str(done), str(counts["read"]),
                             str(counts["refused"]), "0", f"{slowest * 1e3:.1f}", f"{total:.0f}"]])
    note = (f"Each input: hts.open, load of every tensor (a tensor may be refused with a ModelFileError naming the "
            f"file), hts.analyze on every {args.analyze_every}-th; allowed: success or hts.ModelFileError naming "
            f"the file; Python allocation <= {widen:g} x the input's bytes + "
            f"{f'{per_tensor:g} x the largest tensor loaded + ' if per_tensor else ''}{check.SLACK // 2**20} MiB "
            f"(tracemalloc); at most {args.hang} s per input; any other exception, allocation or a hang stops the "
            "run with the input. 'read' counts inputs hts.open listed, 'refused' those it refused as a whole.")
    if done < args.count:
        note += (f" Stopped by the time budget ({args.time_budget:.0f} s) after {done} of {args.count} inputs, on "
                 "2 cores shared with other work.")
    write_report(title, done < 100_000, [table, "", note], args.out)
