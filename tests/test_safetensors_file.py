"""The safetensors reader: exact decoding of every dtype, strict header checks, and no crash on hostile files."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import _st_writer as writer
import hts
from hts.adapters.dtypes import FLOAT8_TABLES
from hts.adapters.safetensors_file import MAX_HEADER_BYTES, read_header


def _write_raw(tmp_path, blob: bytes, name="m.safetensors"):
    p = tmp_path / name
    p.write_bytes(blob)
    return p


def test_round_trip_float_dtypes(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"a.weight": rng.standard_normal((5, 7)), "b.weight": rng.standard_normal((3, 4)).astype(np.float32),
              "c.weight": rng.standard_normal((2, 3, 3, 3)).astype(np.float16)}
    p = tmp_path / "m.safetensors"
    writer.write(p, arrays, metadata={"format": "pt"})
    h = read_header(p)
    assert h.metadata == {"format": "pt"}
    for name, a in arrays.items():
        got = h.load(name)
        assert got.dtype == a.dtype and got.shape == a.shape
        np.testing.assert_array_equal(got, a)


def test_safetensors_package_files_read_identically(tmp_path):
    st_numpy = pytest.importorskip("safetensors.numpy")
    rng = np.random.default_rng(1)
    arrays = {f"layers.{i}.weight": rng.standard_normal((16, 8)).astype(np.float32) for i in (0, 2, 10)}
    p = tmp_path / "m.safetensors"
    st_numpy.save_file(arrays, str(p))
    h = read_header(p)
    assert list(h.tensors) == ["layers.0.weight", "layers.2.weight", "layers.10.weight"]  # natural order
    for name, a in arrays.items():
        np.testing.assert_array_equal(h.load(name), a)


def test_bfloat16_matches_torch(tmp_path):
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    t = (torch.randn(64, 48) * 10).to(torch.bfloat16)
    t[0, :4] = torch.tensor([float("inf"), -0.0, 1e-40, 3.0e38])  # inf, signed zero, subnormal, near max
    p = tmp_path / "bf16.safetensors"
    st_torch.save_file({"w.weight": t}, str(p))
    got = read_header(p).load("w.weight")
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, t.float().numpy())


@pytest.mark.parametrize("code, torch_name", [("F8_E4M3", "float8_e4m3fn"), ("F8_E5M2", "float8_e5m2")])
def test_float8_tables_match_torch_for_all_256_codes(tmp_path, code, torch_name):
    torch = pytest.importorskip("torch")
    codes = torch.arange(256, dtype=torch.uint8)
    expected = codes.view(getattr(torch, torch_name)).float().numpy()
    np.testing.assert_array_equal(FLOAT8_TABLES[code], expected)  # NaN == NaN for assert_array_equal
    p = tmp_path / "f8.safetensors"
    writer.write(p, {"w.weight": (code, bytes(range(256)), [16, 16])})
    np.testing.assert_array_equal(read_header(p).load("w.weight").ravel(), expected)


def test_bfloat16_decoded_in_chunks(tmp_path, monkeypatch):
    """Conversion goes chunk by chunk (bounded extra memory): chunk edges must not shift or drop values."""
    import hts.adapters.safetensors_file as sf

    values = np.random.default_rng(2).standard_normal((301, 5)).astype(np.float32)
    p = tmp_path / "bf.safetensors"
    writer.write(p, {"w.weight": ("BF16", writer.bf16_bytes(values), [301, 5])})
    whole = read_header(p).load("w.weight")
    monkeypatch.setattr(sf, "CHUNK_ELEMENTS", 7)
    np.testing.assert_array_equal(read_header(p).load("w.weight"), whole)
    np.testing.assert_allclose(whole, values, rtol=2**-8)


def test_integer_tensors_are_listed_and_refused(tmp_path):
    p = tmp_path / "q.safetensors"
    writer.write(p, {"q.weight": np.ones((8, 8), np.int8), "f.weight": np.ones((8, 8), np.float32)})
    inv = hts.open(p)
    reasons = {t.key: t.skip_reason for t in inv}
    assert "I8 tensor" in reasons["q.weight"] and reasons["f.weight"] == ""
    with pytest.raises(hts.ModelFileError, match="q.weight"):
        read_header(p).load("q.weight")


# --- hostile files -------------------------------------------------------------------------------------
def _valid(tmp_path):
    header, data = writer.header_and_data({"a.weight": np.arange(12, dtype=np.float32).reshape(3, 4),
                                           "b.weight": np.ones((2, 2), np.float64)})
    return header, data


@pytest.mark.parametrize("mutate, message", [
    (lambda h: h["a.weight"].update(data_offsets=[0, 10_000]), "outside"),
    (lambda h: h["a.weight"].update(shape=[4, 4]), "needs 64 bytes"),
    (lambda h: h["a.weight"].update(shape=[3, -4]), "non-negative"),
    (lambda h: h["a.weight"].update(shape=[2**40, 2**40]), "needs"),
    (lambda h: h["a.weight"].update(data_offsets=[8, 4]), "outside"),
    (lambda h: h["b.weight"].update(data_offsets=[40, 72]), "overlap|outside|needs"),
    (lambda h: h["a.weight"].update(dtype=7), "dtype"),
    (lambda h: h["a.weight"].pop("data_offsets"), "data_offsets"),
    (lambda h: h.update({"c": []}), "not an object"),
    (lambda h: h.update({"__metadata__": [1]}), "__metadata__"),
])
def test_header_lies_are_caught(tmp_path, mutate, message):
    header, data = _valid(tmp_path)
    mutate(header)
    p = _write_raw(tmp_path, writer.encode(header, data))
    with pytest.raises(hts.ModelFileError, match=message) as err:
        read_header(p)
    assert str(p) in str(err.value)


def test_overlapping_tensors(tmp_path):
    header, data = _valid(tmp_path)
    header["b.weight"] = {"dtype": "F32", "shape": [2, 2], "data_offsets": [8, 24]}
    with pytest.raises(hts.ModelFileError, match="overlap"):
        read_header(_write_raw(tmp_path, writer.encode(header, data)))


@pytest.mark.parametrize("blob, message", [
    (b"", "shorter than"),
    (b"\x01\x02", "shorter than"),
    (struct.pack("<Q", MAX_HEADER_BYTES + 1) + b"{}", "exceeds"),
    (struct.pack("<Q", 2**64 - 1) + b"{}", "exceeds"),
    (struct.pack("<Q", 100) + b"{}", "runs past the end"),
    (struct.pack("<Q", 4) + b"nope", "not valid JSON"),
    (struct.pack("<Q", 2) + b"[]", "not an object"),
    (struct.pack("<Q", 4) + b"\xff\xfe{}", "not valid JSON"),
    (struct.pack("<Q", 20000) + b"[" * 10000 + b"]" * 10000, "not valid JSON"),
    (struct.pack("<Q", 16) + b'{"a":{},"a":{}}' + b" ", "duplicate"),
])
def test_malformed_headers(tmp_path, blob, message):
    with pytest.raises(hts.ModelFileError, match=message):
        read_header(_write_raw(tmp_path, blob))


def test_truncated_data_and_changed_file(tmp_path):
    header, data = _valid(tmp_path)
    blob = writer.encode(header, data)
    p = _write_raw(tmp_path, blob[:-8])
    with pytest.raises(hts.ModelFileError, match="outside"):
        read_header(p)
    p = _write_raw(tmp_path, blob, "ok.safetensors")
    h = read_header(p)
    p.write_bytes(blob[:-8])  # rewritten (truncated) after the header was read
    with pytest.raises(hts.ModelFileError, match="changed"):
        h.load("b.weight")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_files_raise_model_file_error_or_read(tmp_path, data):
    """Random byte flips, truncations and header edits: a clean read or ModelFileError, nothing else."""
    header, payload = _valid(tmp_path)
    blob = bytearray(writer.encode(header, payload))
    for _ in range(data.draw(st.integers(0, 6))):
        i = data.draw(st.integers(0, len(blob) - 1))
        blob[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(blob)))
    p = _write_raw(tmp_path, bytes(blob[:cut]) if data.draw(st.booleans()) else bytes(blob), "fuzz.safetensors")
    try:
        h = read_header(p)
        for name in h.tensors:
            try:
                h.load(name)
            except hts.ModelFileError:
                pass
    except hts.ModelFileError:
        pass


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.text(max_size=8),
                           lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4),
                           max_leaves=20))
def test_arbitrary_json_headers(tmp_path, header):
    text = json.dumps(header).encode()
    p = _write_raw(tmp_path, struct.pack("<Q", len(text)) + text + b"\0" * 64, "json.safetensors")
    try:
        read_header(p)
    except hts.ModelFileError:
        pass


# -- issue 19 item 9: headers that are legal JSON but hostile in size ------------------------------------------
def _header_only(path, header: bytes) -> None:
    header += b" " * (-len(header) % 8)
    path.write_bytes(struct.pack("<Q", len(header)) + header)


def test_a_header_of_a_million_empty_objects_is_refused_before_parsing(tmp_path):
    """~11 MB of ``{"t0":{},"t1":{},...}``: counted, not parsed (json.loads would build a million dicts)."""
    import tracemalloc

    path = tmp_path / "empty-objects.safetensors"
    _header_only(path, b"{" + b",".join(b'"t%d":{}' % i for i in range(1_000_000)) + b"}")
    tracemalloc.start()
    try:
        with pytest.raises(hts.ModelFileError, match="more than the 200000 tensors"):
            read_header(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * path.stat().st_size + (4 << 20)  # the raw header and its count, nothing per object


def test_a_legal_header_with_too_many_tiny_tensors_is_refused(tmp_path, monkeypatch):
    import hts.adapters.safetensors_file as sf

    monkeypatch.setattr(sf, "MAX_TENSORS", 1000)
    path = tmp_path / "many.safetensors"
    header = {f"t{i}": {"dtype": "F32", "shape": [1], "data_offsets": [4 * i, 4 * i + 4]} for i in range(1001)}
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(4 * 1001))
    with pytest.raises(hts.ModelFileError, match="more than the 1000"):
        read_header(path)
    monkeypatch.setattr(sf, "MAX_TENSORS", 1001)
    assert len(read_header(path).tensors) == 1001
