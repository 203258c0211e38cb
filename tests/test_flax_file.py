"""Flax msgpack reader: checkpoints in flax.serialization's format (written here with msgpack, following flax's
documented encoding; checked against flax itself when it is installed), and hostile bytes."""

from __future__ import annotations

import numpy as np
import pytest

msgpack = pytest.importorskip("msgpack")

from hts import ModelFileError
from hts.adapters.files import read_file
from hts.adapters.flax_file import from_flax


def _ext(a: np.ndarray):
    """flax.serialization's ndarray encoding: ExtType(1, packb((shape, dtype name, C-order bytes)))."""
    return msgpack.ExtType(1, msgpack.packb((a.shape, a.dtype.name, a.tobytes("C")), use_bin_type=True))


def _tree(d):
    return {k: _tree(v) if isinstance(v, dict) else (_ext(v) if isinstance(v, np.ndarray) else v) for k, v in d.items()}


def _write(path, state):
    path.write_bytes(msgpack.packb(_tree(state), use_bin_type=True))
    return str(path)


@pytest.fixture()
def linen_state():
    rng = np.random.default_rng(0)
    f = lambda *s: rng.standard_normal(s).astype(np.float32)
    return {"params": {"Embed_0": {"embedding": f(50, 16)},
                       "Conv_0": {"kernel": f(3, 3, 4, 8), "bias": f(8)},
                       "Conv1d_0": {"kernel": f(5, 8, 12)},
                       "Dense_0": {"kernel": f(16, 32), "bias": f(32)},
                       "LayerNorm_0": {"scale": f(32)},
                       "Attn": {"query": {"kernel": f(32, 4, 8)}}},
            "step": 7}


def test_linen_tree_types_orientations_values(tmp_path, linen_state):
    p = _write(tmp_path / "ckpt.msgpack", linen_state)
    ts = from_flax(p)
    by = {t.key: t for t in ts}
    P = linen_state["params"]
    assert (by["params.Embed_0.embedding"].layer_type, by["params.Embed_0.embedding"].orientation) == \
        ("embedding", "out_in")
    assert (by["params.Dense_0.kernel"].layer_type, by["params.Dense_0.kernel"].orientation) == ("dense", "in_out")
    assert by["params.Dense_0.kernel"].longname == "params.Dense_0"
    assert by["params.Conv_0.kernel"].orientation == "kh_kw_in_out"
    c1 = by["params.Conv1d_0.kernel"]
    assert c1.shape == (12, 8, 5) and c1.layer_type == "conv1d"
    np.testing.assert_array_equal(c1.load(), P["Conv1d_0"]["kernel"].transpose(2, 1, 0))
    np.testing.assert_array_equal(by["params.Dense_0.kernel"].load(), P["Dense_0"]["kernel"])
    np.testing.assert_array_equal(by["params.Conv_0.kernel"].load(), P["Conv_0"]["kernel"])
    assert "not a Dense/Conv kernel" in by["params.Attn.query.kernel"].skip_reason
    assert not any(k.endswith(("bias", "scale")) for k in by)
    assert [t.key for t in read_file(p)] == [t.key for t in ts]


def test_nnx_value_wrappers_bfloat16_and_chunked_arrays(tmp_path):
    rng = np.random.default_rng(1)
    w = rng.standard_normal((24, 10)).astype(np.float32)
    bf = (w.view(np.uint32) >> 16).astype(np.uint16)  # truncate to bfloat16 bits
    big = rng.standard_normal((30, 20)).astype(np.float32)
    flat = big.reshape(-1)
    chunked = {"__msgpack_chunked_array__": True, "shape": [30, 20],
               "chunks": {"1": flat[250:], "0": flat[:250]}}
    state = {"linear1": {"kernel": {"value": w}}, "linear2": {"kernel": {"raw_value": big}}}
    p = tmp_path / "nnx.msgpack"
    tree = _tree(state)
    tree["emb"] = {"embedding": _tree(chunked)}
    tree["bf"] = {"kernel": msgpack.ExtType(1, msgpack.packb(((24, 10), "bfloat16", bf.tobytes()), use_bin_type=True))}
    p.write_bytes(msgpack.packb(tree, use_bin_type=True))
    by = {t.key: t for t in from_flax(str(p))}
    np.testing.assert_array_equal(by["linear1.kernel"].load(), w)
    np.testing.assert_array_equal(by["linear2.kernel"].load(), big)
    np.testing.assert_array_equal(by["emb.embedding"].load(), big)
    assert by["bf.kernel"].dtype == "bfloat16"
    np.testing.assert_array_equal(by["bf.kernel"].load(), (bf.astype(np.uint32) << 16).view(np.float32))


def test_alpha_equals_the_same_kernel_as_an_array(tmp_path):
    import hts

    rng = np.random.default_rng(2)
    w = rng.standard_normal((80, 60)).astype(np.float32)
    p = _write(tmp_path / "m.msgpack", {"params": {"Dense_0": {"kernel": w}}})
    a = hts.analyze(p).analysed[0]
    b = hts.analyze({"fc.weight": w}).analysed[0]
    assert abs(a["alpha"] - b["alpha"]) <= 1e-12 and abs(a["log_spectral_norm"] - b["log_spectral_norm"]) <= 1e-12


def test_matches_flax_serialization_when_installed(tmp_path, linen_state):
    serialization = pytest.importorskip("flax.serialization")
    p = tmp_path / "f.msgpack"
    p.write_bytes(serialization.msgpack_serialize(linen_state))
    by = {t.key: t for t in from_flax(str(p))}
    np.testing.assert_array_equal(by["params.Dense_0.kernel"].load(), linen_state["params"]["Dense_0"]["kernel"])


def test_hostile_bytes_only_raise_model_file_error(tmp_path, linen_state):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    base = (tmp_path / "b.msgpack")
    _write(base, linen_state)
    data0 = base.read_bytes()
    p = tmp_path / "h.msgpack"

    @settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.tuples(st.integers(0, len(data0) - 1), st.integers(0, 255)), max_size=6),
           st.integers(1, len(data0)))
    def run(edits, length):
        data = bytearray(data0[:length])
        for pos, val in edits:
            if pos < len(data):
                data[pos] = val
        p.write_bytes(bytes(data))
        try:
            for t in from_flax(str(p)):
                if not t.skip_reason:
                    t.load()
        except ModelFileError as err:
            assert str(p) in str(err)

    run()


def test_folders_hf_flax_model_and_orbax_checkpoint(tmp_path, linen_state):
    """A Hugging Face folder with flax_model.msgpack (linen names), and a flax.training / Orbax step folder whose
    param tree is a msgpack file named ``checkpoint`` (nnx names: ``value`` wrappers); a TensorFlow ``checkpoint``
    text file is not taken for one."""
    import hts

    hf = tmp_path / "hf"
    hf.mkdir()
    _write(hf / "flax_model.msgpack", linen_state)
    (hf / "config.json").write_text('{"model_type": "bert"}')
    assert [t.key for t in hts.open(str(hf))] == [t.key for t in from_flax(str(hf / "flax_model.msgpack"))]
    rng = np.random.default_rng(3)
    w = rng.standard_normal((12, 8)).astype(np.float32)
    orbax = tmp_path / "checkpoint_100"
    orbax.mkdir()
    _write(orbax / "checkpoint", {"model": {"linear1": {"kernel": {"value": w}}}, "step": 100})
    (orbax / "_CHECKPOINT_METADATA").write_text("{}")
    (t,) = hts.open(str(orbax))
    assert (t.key, t.longname, t.layer_type) == ("model.linear1.kernel", "model.linear1", "dense")
    np.testing.assert_array_equal(t.load(), w)
    tf = tmp_path / "tf"
    tf.mkdir()
    (tf / "checkpoint").write_text('model_checkpoint_path: "ckpt-1"\n')
    with pytest.raises(ModelFileError, match="no model weights found"):
        hts.open(str(tf))


def test_listing_is_a_sequence_of_records_made_on_use(tmp_path, linen_state):
    """``from_flax`` keeps its listing as columns: each access makes an equal record; indexing, negative
    indices and slices behave as on the list it used to return."""
    ts = from_flax(_write(tmp_path / "ckpt.msgpack", linen_state))
    records = list(ts)
    assert len(ts) == len(records) > 1
    assert [ts[i] for i in range(-len(ts), 0)] == records and ts[1:] == records[1:] and ts[::-1] == records[::-1]
    assert [t.layer_id for t in records] == list(range(1, len(records) + 1))
    with pytest.raises(IndexError):
        ts[len(ts)]
    for a, b in zip(records, ts):
        if not a.skip_reason:
            np.testing.assert_array_equal(a.load(), b.load())
