"""``Analysis.rows`` as a compact read-only sequence (issue 19 item 9, the output of a tensor flood): the rows of a
lazily read file (skipped tensors made on access) are the rows of the same model read as a list, and the
command line's chunked csv / json / table output is the text the whole table gives."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file

import hts
from hts import _frames
from hts._frames import Scan, frames, table
from hts.analysis_rows import AnalysisRows
from hts.inventory import Inventory


def _same(a, b) -> bool:
    """Row (or value) equality with NaN equal to NaN, and any two times (a layer's seconds differ run to run)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(k == "time" or _same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """A safetensors file of analysed, failed and skipped tensors of every skipped kind (1-D, too small with a
    plan, an empty matrix with M = 0, a conv kernel)."""
    rng = np.random.default_rng(3)
    bad = rng.normal(size=(40, 30)).astype(np.float32)
    bad[2, 3] = np.nan
    tensors = {
        "blocks.0.attn.weight": rng.standard_t(4, size=(60, 40)).astype(np.float32),
        "blocks.0.attn.bias": rng.normal(size=60).astype(np.float32),
        "blocks.0.tiny.weight": rng.normal(size=(3, 2)).astype(np.float32),
        "blocks.0.empty.weight": np.zeros((0, 5), np.float32),
        "blocks.1.conv.weight": rng.normal(size=(24, 16, 3, 3)).astype(np.float32),
        "blocks.1.bad.weight": bad,
        "blocks.1.norm.weight": np.ones(40, np.float32),
        "blocks.2.mlp.weight": rng.standard_t(3, size=(80, 50)).astype(np.float64),
    }
    path = tmp_path_factory.mktemp("rows") / "mixed.safetensors"
    save_file(tensors, str(path))
    return str(path)


@pytest.mark.parametrize("options", [{}, {"pool": False}, {"start_ids": 1}, {"layers": ["-*.tiny"]},
                                     {"layers": "blocks.1.*", "start_ids": 2}])
def test_lazy_rows_are_the_rows_of_the_model_read_as_a_list(mixed, options):
    lazy = hts.analyze(mixed, **options)
    inv = hts.open(mixed)
    listed = hts.analyze(Inventory(list(inv.tensors)), **options)  # a list: every row held as a dict
    assert isinstance(lazy.rows, AnalysisRows) and len(lazy.rows.held) < len(lazy.rows)
    assert len(listed.rows.held) == len(listed.rows)
    rows = list(lazy.rows)
    assert len(rows) == len(listed.rows) and all(_same(a, b) for a, b in zip(rows, listed.rows))
    assert all(_same(lazy.rows[k], rows[k]) for k in range(-len(rows), len(rows)))
    assert all(_same(a, b) for a, b in zip(lazy.rows[1:-1:2], rows[1:-1:2]))
    with pytest.raises(IndexError):
        lazy.rows[len(rows)]
    assert lazy.rows == lazy.rows and lazy.rows == rows  # a skipped row is a new, equal dict each time
    assert lazy.counts == listed.counts and lazy.counts["skipped"] >= 1
    assert _same(lazy.summary, listed.summary)
    assert len(lazy.analysed) == len(listed.analysed)
    assert all(_same(a, b) for a, b in zip(lazy.analysed, listed.analysed))
    assert list(lazy.rows.reasons()) == [r["reason"] for r in rows]
    pd.testing.assert_frame_equal(lazy.details.drop(columns="time"), listed.details.drop(columns="time"))
    back = pickle.loads(pickle.dumps(lazy)).rows  # every row as a dict (new NaN objects: compared with _same)
    assert len(back.held) == len(back) == len(rows) and all(_same(a, b) for a, b in zip(back, rows))
    assert [r["layer_id"] for r in json.loads(lazy.to_json())["layers"]] == [r["layer_id"] for r in rows]


@pytest.mark.parametrize("chunk", [1, 2, 3, 100])
@pytest.mark.parametrize("pool", [True, False])
def test_detail_frames_are_details_in_chunks(mixed, chunk, pool):
    a = hts.analyze(mixed, pool=pool)
    whole = a.details
    parts = list(a.detail_frames(chunk=chunk))
    assert len(parts) == (1 if len(a.rows) <= chunk else math.ceil(len(a.rows) / chunk))
    joined = pd.concat(parts, ignore_index=True)
    pd.testing.assert_frame_equal(joined, whole)
    assert "".join(df.to_csv(index=False, header=k == 0) for k, df in enumerate(parts)) == whole.to_csv(index=False)
    with pytest.MonkeyPatch.context() as m:  # details itself is made in chunks when longer than one
        m.setattr(_frames, "CHUNK_ROWS", chunk)
        pd.testing.assert_frame_equal(a.details, whole)
    shown = pd.concat(list(a.detail_frames(skipped=False, chunk=chunk)), ignore_index=True)
    pd.testing.assert_frame_equal(shown, whole[whole.status != "skipped"].reset_index(drop=True))


def test_json_parts_are_to_json(mixed):
    for options in ({}, {"pool": False}):
        a = hts.analyze(mixed, **options)
        for indent in (None, 1, 2):
            want = json.dumps(a.to_dict(), allow_nan=False, indent=indent)
            assert "".join(a.json_parts(indent=indent)) == want and a.to_json(indent=indent) == want
        assert a.to_json(sort_keys=True) == json.dumps(a.to_dict(), allow_nan=False, sort_keys=True)


@pytest.mark.parametrize("fmt", ["csv", "json", "table"])
@pytest.mark.parametrize("options", [{}, {"pool": False}, {"mp_fit": True}])
def test_cli_output_written_in_chunks_is_the_same(mixed, tmp_path, monkeypatch, fmt, options):
    from argparse import Namespace

    from hts.cli.analyze import write

    a = hts.analyze(mixed, **options)  # one result written both ways (a layer's time differs run to run)
    whole, chunked = tmp_path / "whole", tmp_path / "chunked"
    write(a, Namespace(format=fmt, output=str(whole)))
    monkeypatch.setattr(_frames, "CHUNK_ROWS", 2)
    write(a, Namespace(format=fmt, output=str(chunked)))
    assert chunked.read_text() == whole.read_text()
    if fmt == "json":
        assert len(json.loads(whole.read_text())["layers"]) == len(a.rows)


@pytest.mark.parametrize("options", [{}, {"pool": False, "mp_fit": True}])
@pytest.mark.parametrize("model", ["mixed", "sizes"])
def test_parquet_written_in_chunks_reads_back_as_the_whole_table(request, tmp_path, monkeypatch, options, model):
    """A chunk of skipped rows only has no value in the analysed rows' text columns (precision): the file's
    schema is unified over the chunks, and the file reads back as the whole table."""
    pytest.importorskip("pyarrow")  # an optional dependency (--format parquet)
    from hts.cli.analyze import write_parquet

    a = hts.analyze(request.getfixturevalue(model), **options)
    whole, chunked = tmp_path / "whole.parquet", tmp_path / "chunked.parquet"
    write_parquet(a, str(whole))
    for chunk in (1, 2):
        monkeypatch.setattr(_frames, "CHUNK_ROWS", chunk)
        write_parquet(a, str(chunked))
        pd.testing.assert_frame_equal(pd.read_parquet(chunked), pd.read_parquet(whole))
    back = pd.read_parquet(whole)  # text read back in pandas' default storage (Arrow when pyarrow is installed)
    pd.testing.assert_frame_equal(back.astype({c: a.details[c].dtype for c in back.columns
                                               if isinstance(back[c].dtype, pd.StringDtype)}), a.details)


def test_rows_from_a_list_and_equality():
    rows = AnalysisRows([{"status": "skipped", "reason": "x"}, {"status": "success", "reason": ""}])
    assert rows == [{"status": "skipped", "reason": "x"}, {"status": "success", "reason": ""}]
    assert rows != [{"status": "skipped", "reason": "x"}]
    assert AnalysisRows() == [] and rows.skipped_count == 1 and list(rows.reasons()) == ["x", ""]
    a = hts.Analysis([], {}, {})
    assert a.rows == [] and a.counts["skipped"] == 0


_values = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.integers(2**62, 2**64 - 1),
                    st.integers(-2**64, -2**63 + 2), st.floats(allow_nan=True, allow_infinity=True),
                    st.floats(allow_nan=True).map(np.float64), st.sampled_from(["", "a", "b,c", "3"]))


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), _values, max_size=4), max_size=12),
       chunk=st.integers(1, 5))
def test_chunked_frames_write_what_the_whole_frame_writes(rows, chunk):
    """pandas' type inference over chunks, made the whole table's: ints that meet a NaN elsewhere are written
    as floats, bools that meet a missing value are objects, and so on."""
    columns = ["a", "b", "c", "d"]
    whole = pd.DataFrame(rows, columns=columns)
    parts = list(frames(rows, columns, Scan(rows).types(columns), chunk=chunk))
    assert "".join(df.to_csv(index=False, header=k == 0) for k, df in enumerate(parts)) == whole.to_csv(index=False)
    joined = pd.concat(parts)
    assert list(joined.dtypes) == [_frames._python_text(t) for t in whole.dtypes]  # text: Python strings
    assert joined.to_string(index=False) == whole.to_string(index=False)
    assert table(rows, columns).to_csv(index=False) == whole.to_csv(index=False)


@pytest.mark.parametrize("name", ["enc.\ud800x", "caf\udce9", "\udfff"])
def test_a_lone_surrogate_fits_in_every_frame_hts_makes(name):
    """With pyarrow installed pandas 3 keeps inferred text in Arrow, which refuses a lone surrogate; hts's
    frames keep text in Python strings (issue 19 item 11), and escaped() writes it as its Python escape."""
    rows = [{"longname": name, "N": 3}, {"longname": "ok", "N": None}, {"N": 4}]
    df = table(rows)
    assert df["longname"].tolist()[:2] == [name, "ok"] 
    assert getattr(df["longname"].dtype, "storage", "python") == "python"  # pandas 3's str, or object
    assert list(df.columns) == ["longname", "N"] and df["N"].dtype == np.float64
    out = _frames.escaped(df)
    assert out["longname"].tolist()[:2] == [name.encode("utf-8", "backslashreplace").decode(), "ok"]
    assert out["longname"].dtype == df["longname"].dtype and _frames.escaped(out) is out
    column = _frames.text_column(name, 2)
    assert column.tolist() == [name, name] and column.dtype == df["longname"].dtype


@pytest.fixture(scope="module")
def sizes(tmp_path_factory):
    """Tensors whose sizes in MB need 1, 2 and 3 decimals (pandas picks a float column's decimals from all its
    values), non-matrices (N is <NA>), a conv kernel and a name with a tab and a newline."""
    rng = np.random.default_rng(5)
    tensors = {f"l{i}.weight": rng.normal(size=shape).astype(np.float32) for i, shape in enumerate(
        [(1,), (500,), (25, 20), (250, 500), (16, 8, 3, 3), (125, 1000), (2,), (50, 50), (40,), (1, 1)])}
    tensors["odd\tname\nwith escapes.weight"] = rng.normal(size=(30, 20)).astype(np.float32)  # shown escaped
    path = tmp_path_factory.mktemp("sizes") / "sizes.safetensors"
    save_file(tensors, str(path))
    return str(path)


@pytest.mark.parametrize("fmt", ["csv", "json", "table"])
@pytest.mark.parametrize("model", ["mixed", "sizes"])
@pytest.mark.parametrize("extra", [[], ["--no-pool", "--start-ids", "1"]])
def test_describe_written_in_chunks_is_the_same(request, tmp_path, monkeypatch, fmt, model, extra):
    from hts.cli import main

    path = request.getfixturevalue(model)
    whole, chunked = tmp_path / "whole", tmp_path / "chunked"
    assert main(["describe", path, "--format", fmt, "-o", str(whole), *extra]) == 0
    for chunk in (1, 3):
        monkeypatch.setattr(_frames, "CHUNK_ROWS", chunk)
        assert main(["describe", path, "--format", fmt, "-o", str(chunked), *extra]) == 0
        assert chunked.read_text() == whole.read_text()
    if fmt == "table" and model == "sizes":
        assert " 0.500\n" in whole.read_text() and " 0.002\n" in whole.read_text() and "<NA>" in whole.read_text()
