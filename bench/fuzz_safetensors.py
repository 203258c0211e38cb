"""Fuzz hts's safetensors reader: by default 100,000 generated hostile files (tests/_fuzz_safetensors.py: each
read or refused with hts.ModelFileError, nothing else, no hang, bounded allocation), optionally followed by a
coverage-guided atheris run (``--atheris N``, if ``pip install atheris`` works on this machine).

    python bench/fuzz_safetensors.py                 # 100,000 inputs, report in bench/results/fuzz.md
    python bench/fuzz_safetensors.py --count 2000    # quick
    python bench/fuzz_safetensors.py --atheris 100000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from _common import markdown_table, write_report  # noqa: E402

import _fuzz_safetensors as fuzz  # noqa: E402


def generated(count: int, seed: int, folder: str) -> list[str]:
    t0 = time.perf_counter()
    result = fuzz.run(count, seed, os.path.join(folder, "generated.safetensors"))
    elapsed = time.perf_counter() - t0
    return ["generated", str(result["inputs"]), str(result["read"]), str(result["refused"]), "0",
            f"{result['slowest_s'] * 1e3:.1f}", f"{elapsed:.0f}"]


def coverage_guided(runs: int, folder: str) -> list[str] | None:
    """atheris in a child process (libFuzzer ends its process with exit()); it leaves its counts in a file."""
    try:
        import atheris  # noqa: F401
    except ImportError:
        print("atheris is not installed: coverage-guided run skipped", file=sys.stderr)
        return None
    counts_file = os.path.join(folder, "atheris.json")
    t0 = time.perf_counter()
    child = subprocess.run([sys.executable, os.path.abspath(__file__), "--atheris-child", str(runs), folder])
    with open(counts_file) as f:
        counts = json.load(f)
    if child.returncode != 0:
        raise SystemExit(f"atheris found a failing input (exit {child.returncode}); see its output above")
    return ["atheris (coverage-guided)", str(counts["read"] + counts["refused"]), str(counts["read"]),
            str(counts["refused"]), "0", f"{counts['slowest_s'] * 1e3:.1f}", f"{time.perf_counter() - t0:.0f}"]


def atheris_child(runs: int, folder: str) -> None:
    import atheris

    atheris.instrument_all()  # hts's reader and everything it calls report coverage
    path = os.path.join(folder, "atheris.safetensors")
    counts_file = os.path.join(folder, "atheris.json")
    corpus_dir = os.path.join(folder, "corpus")
    os.makedirs(corpus_dir, exist_ok=True)
    for i, blob in enumerate(fuzz.seeds()):
        with open(os.path.join(corpus_dir, f"seed{i}"), "wb") as f:
            f.write(blob)
    counts = {"read": 0, "refused": 0, "slowest_s": 0.0}

    def one_input(data: bytes) -> None:
        t0 = time.perf_counter()
        counts[fuzz.check(path, data, analyze=True)] += 1
        counts["slowest_s"] = max(counts["slowest_s"], time.perf_counter() - t0)
        with open(counts_file, "w") as f:  # libFuzzer exits the process itself: keep the file current
            json.dump(counts, f)

    tracemalloc.start()
    atheris.Setup([sys.argv[0], f"-runs={runs}", "-max_len=4096", corpus_dir], one_input)
    atheris.Fuzz()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000, help="generated inputs (default 100,000)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--atheris", type=int, default=0, metavar="N", help="then N atheris runs")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "fuzz.md"))
    parser.add_argument("--atheris-child", nargs=2, metavar=("RUNS", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.atheris_child:
        atheris_child(int(args.atheris_child[0]), args.atheris_child[1])
        return
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        rows.append(generated(args.count, args.seed, folder))
        if args.atheris:
            row = coverage_guided(args.atheris, folder)
            if row:
                rows.append(row)
    table = markdown_table(["engine", "inputs", "read", "refused (ModelFileError)", "other outcomes",
                            "slowest input (ms)", "total (s)"], rows)
    note = (f"Each input: read_header, load of every tensor, hts.analyze(path); allowed: success or "
            f"hts.ModelFileError; Python allocation <= {fuzz.WIDEN} x file size + {fuzz.SLACK // 2**20} MiB "
            "(tracemalloc); any other exception, allocation or a hang stops the run with the input.")
    write_report("Fuzzing the safetensors reader", args.count < 100_000, [table, "", note], args.out)


if __name__ == "__main__":
    main()
