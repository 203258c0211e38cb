"""Fuzz hts's GGUF reader: by default 100,000 generated hostile files (tests/_fuzz_gguf.py: well-formed except
for a few lying fields — counts, string/array lengths, dims, type ids, offsets, alignment, truncation). Each is
opened, every tensor loaded (dequantised), and every ``--analyze-every``-th analysed; allowed outcomes: success
or ``hts.ModelFileError`` naming the file, with Python allocation bounded by what the file can decode to.

    python bench/fuzz_gguf.py                  # 100,000 inputs, report in bench/results/fuzz_gguf.md
    python bench/fuzz_gguf.py --count 2000     # quick
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import tracemalloc
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from _common import markdown_table, write_report  # noqa: E402

import _fuzz_gguf as fuzz  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--analyze-every", type=int, default=10, help="run hts.analyze on every N-th input")
    parser.add_argument("--time-budget", type=float, default=0, metavar="S",
                        help="stop after S seconds (0: no limit); the report says how many inputs ran")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "fuzz_gguf.md"))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    counts: Counter = Counter()
    slowest = 0.0
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "fuzz.gguf")
        tracemalloc.start()
        done = 0
        for i in range(args.count):
            if args.time_budget and time.perf_counter() - t_start > args.time_budget:
                break
            done += 1
            blob = fuzz.hostile_gguf(fuzz.RandomSource(rng))
            with open(path, "wb") as f:
                f.write(blob)
            t0 = time.perf_counter()
            try:
                counts[fuzz.check_bounded(path, analyze=i % args.analyze_every == 0)] += 1
            except BaseException:
                keep = os.path.join(HERE, "results", "fuzz_gguf_failure.gguf")
                with open(keep, "wb") as f:
                    f.write(blob)
                print(f"input {i} failed; kept as {keep}", file=sys.stderr)
                raise
            slowest = max(slowest, time.perf_counter() - t0)
        tracemalloc.stop()
    total = time.perf_counter() - t_start
    table = markdown_table(["engine", "inputs", "read", "refused (ModelFileError)", "other outcomes",
                            "slowest input (ms)", "total (s)"],
                           [["generated (tests/_fuzz_gguf.py)", str(done), str(counts["read"]),
                             str(counts["refused"]), "0", f"{slowest * 1e3:.1f}", f"{total:.0f}"]])
    note = (f"Each input: hts.open, load (dequantise) of every tensor, hts.analyze on every {args.analyze_every}-th; "
            "allowed: success or hts.ModelFileError naming the file; Python allocation <= the float32 values "
            f"the file's bytes can decode to ({fuzz.WIDEN:.1f} x file size) + {fuzz.SLACK // 2**20} MiB "
            "(tracemalloc); any other exception, allocation or a hang stops the run with the input.")
    if done < args.count:
        note += (f" Stopped by the time budget ({args.time_budget:.0f} s) after {done} of {args.count} inputs, on "
                 "2 cores shared with other work.")
    write_report("Fuzzing the GGUF reader", done < 100_000, [table, "", note], args.out)


if __name__ == "__main__":
    main()
