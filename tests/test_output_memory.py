"""Bounded memory for what hts builds from a tensor flood (issue 19 item 9): ``hts.analyze`` and the command
line's ``hts analyze`` / ``hts describe`` outputs of a file of very many tiny or empty tensors stay within the
readers' bound — 4 × the file's size (+ ``SLACK``; nothing is loaded) — measured as the peak RSS of a fresh
process (``tests/_memory_probe.py --analyze`` / ``--cli``), after importing hts, numpy and pandas.

Before the rows were kept compactly (``hts.analysis_rows``) and written in chunks (``hts._frames``), these took
5-40 × the file (a dict per skipped row, the whole table built before writing).
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
from _floods import write_empty_safetensors_flood

from hts.adapters.limits import MAX_TENSORS

PROBE = os.path.join(os.path.dirname(__file__), "_memory_probe.py")
MB = 2**20
SLACK = 16 * MB


def _probe(*args: str) -> dict:
    proc = subprocess.run([sys.executable, PROBE, *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _bounded(path, *args: str, allowance: int = 0) -> dict:
    """Run the probe; its peak over the imports must be at most 4 × the file + ``SLACK`` (+ ``allowance``)."""
    got = _probe(*args)
    size = os.path.getsize(path)
    used = got["peak"] - got["base"]
    bound = 4 * size + SLACK + allowance
    assert used <= bound, (f"{' '.join(args[:2])}: {used / MB:.1f} MB peak for a {size / MB:.1f} MB file "
                           f"(bound {bound / MB:.1f} MB)")
    print(f"{' '.join(args[:2])} {' '.join(args[3:])}: {size / MB:.1f} MB file, {used / MB:.1f} MB peak")
    return got


@pytest.fixture(scope="module")
def flood(tmp_path_factory):
    """30,000 1×1 F32 tensors (2.5 MB): every one listed, every one skipped (too few eigenvalues)."""
    n = 30_000
    entries = ",".join(f'"model.layers.{i}.w":{{"dtype":"F32","shape":[1,1],"data_offsets":[{4 * i},{4 * i + 4}]}}'
                       for i in range(n))
    raw = ("{" + entries + "}").encode()
    path = tmp_path_factory.mktemp("flood") / "flood.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + np.arange(n, dtype=np.float32).tobytes())
    return path


def test_analyze_of_a_flood_of_empty_tensors(tmp_path):
    """The readers' cheapest tensors (~55 bytes of header each), as many as a file may hold: ``hts.analyze`` and
    its counts, summary and every row (made one at a time)."""
    from hts.adapters.limits import MAX_TENSORS

    n = MAX_TENSORS - 100
    path = tmp_path / "empty.safetensors"
    write_empty_safetensors_flood(path, n)
    got = _bounded(path, "--analyze", str(path))
    assert got["tensors"] == n


@pytest.fixture(scope="module")
def gguf_flood(tmp_path_factory):
    """GGUF's cheapest listed tensors (empty, ~44 bytes of header each), as many as a file may hold (8.5 MB)."""
    pytest.importorskip("gguf")
    import _gguf_files

    return _gguf_files.write_empty_flood(tmp_path_factory.mktemp("gguf") / "empty.gguf", MAX_TENSORS - 100)


def test_analyze_of_a_gguf_flood(gguf_flood):
    """Before the GGUF listing was kept as columns (a record and a closure per tensor, so a dict per skipped
    row): 415 MB for the 8.5 MB file."""
    got = _bounded(gguf_flood, "--analyze", str(gguf_flood))
    assert got["tensors"] == MAX_TENSORS - 100


def test_command_line_csv_of_a_version_1_gguf_flood(tmp_path):
    """Version 1 (u32 lengths and dims) makes the cheapest listed GGUF tensors: ~36 bytes each (7.0 MB, bound
    44 MB); 45 MB with the names held as ``str`` (one list), 35 MB with them in one buffer."""
    import _gguf_files

    path = _gguf_files.write_v1_empty_flood(tmp_path / "v1.gguf", MAX_TENSORS - 100)
    out = tmp_path / "out.csv"
    got = _bounded(path, "--cli", "analyze", str(path), "--format", "csv", "-o", str(out))
    assert got["outcome"] == "exit 1"  # nothing analysable, after the table is written
    with open(out) as f:
        assert sum(1 for _ in f) == MAX_TENSORS - 99


def test_analyze_of_a_flax_flood_of_empty_arrays(tmp_path):
    """A Flax msgpack file of 100,000 empty 0×2 arrays under arbitrary names (~21 bytes of file each, 2.1 MB):
    the skipped rows' reason named each array's leaf, so every row held its own string (~37 MB against a 24 MB
    bound); one reason per kind of array now."""
    msgpack = pytest.importorskip("msgpack")
    empty = msgpack.ExtType(1, msgpack.packb(((0, 2), "float32", b""), use_bin_type=True))
    path = tmp_path / "empty.msgpack"
    path.write_bytes(msgpack.packb({np.base_repr(i, 36): empty for i in range(100_000)}, use_bin_type=True))
    assert _bounded(path, "--analyze", str(path))["tensors"] == 100_000


@pytest.mark.parametrize("command", ["analyze", "describe"])
@pytest.mark.parametrize("fmt", ["csv", "json", "table"])
def test_command_line_output_of_a_flood(flood, tmp_path, command, fmt):
    out = tmp_path / f"out.{fmt}"
    got = _bounded(flood, "--cli", command, str(flood), "--format", fmt, "-o", str(out))
    # hts analyze: nothing analysable is an error (exit 1), after the table is written
    assert got["outcome"] == ("exit 1" if command == "analyze" else "exit 0")
    text = out.read_text()
    if fmt == "csv":
        assert text.count("\n") == 30_001
    elif fmt == "json":
        doc = json.loads(text)
        assert len(doc["layers" if command == "analyze" else "tensors"]) == 30_000
    else:
        assert "30000 tensors" in text


def test_serve_holds_a_flood_result_once(flood):
    """``hts serve`` keeps a model's result as its /analysis.json text (~0.7 KiB per skipped row: JSON has no
    compact form) and nothing more: held at most the page + 4 × file (+ slack), peak at most twice the page +
    4 × file. Before, it kept ``to_dict()`` (a dict per row) and the page beside the rows' dicts: held 118 MB,
    peak 206 MB for a 44 MB page of a 5 MB file."""
    got = _probe("--serve", str(flood))
    assert got["error"] == ""
    size, page = os.path.getsize(flood), got["page"]
    held, peak = got["held"] - got["base"], got["peak"] - got["base"]
    print(f"serve: {size / MB:.1f} MB file, {page / MB:.1f} MB page, held {held / MB:.1f} MB, peak {peak / MB:.1f} MB")
    assert held <= page + 4 * size + SLACK, got
    assert peak <= 2 * page + 4 * size + SLACK, got


def test_serve_page_keeps_its_text_across_publishes(tmp_path):
    """The result's JSON is rendered once (``Analysis.json_parts``) and then held as a view into the page: a
    second publish writes the same bytes, and the page parses to the analysis' ``to_dict()`` layout."""
    from safetensors.numpy import save_file

    import hts
    from hts.serve import MetricsSidecar

    rng = np.random.default_rng(0)
    path = tmp_path / "m.safetensors"
    save_file({"a.weight": rng.standard_t(4, size=(60, 40)).astype(np.float32),
               "a.bias": np.zeros(60, np.float32), "b.weight": rng.normal(size=(3, 2)).astype(np.float32)}, str(path))
    s = MetricsSidecar([str(path)], port=0, interval=3600, settle=0)
    try:
        s.refresh()
        first = bytes(s.page("/analysis.json")[0])
        assert isinstance(s.states()[0].analysis_json, memoryview)
        s._publish()
        assert bytes(s.page("/analysis.json")[0]) == first
        got = json.loads(first)["m.safetensors"]["analysis"]
        want = json.loads(hts.analyze(str(path)).to_json())
        assert list(got) == list(want) and [r["longname"] for r in got["layers"]] == \
            [r["longname"] for r in want["layers"]] and got["counts"] == want["counts"]
    finally:
        s.close()


def test_parquet_output_of_a_flood(flood, tmp_path):
    """``--format parquet`` writes a row group per chunk. pyarrow's own cost (its import, its memory pool) is
    taken from the same command on a one-tensor file."""
    pytest.importorskip("pyarrow")  # an optional dependency
    from safetensors.numpy import save_file

    tiny = tmp_path / "tiny.safetensors"
    save_file({"a.weight": np.ones((3, 3), np.float32)}, str(tiny))
    fixed = _probe("--cli", "analyze", str(tiny), "--format", "parquet", "-o", str(tmp_path / "t.parquet"))
    got = _bounded(flood, "--cli", "analyze", str(flood), "--format", "parquet", "-o", str(tmp_path / "f.parquet"),
                   allowance=fixed["peak"] - fixed["base"])
    assert got["outcome"] == "exit 1"
    import pandas as pd

    assert len(pd.read_parquet(tmp_path / "f.parquet")) == 30_000
