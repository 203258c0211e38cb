"""Orbax checkpoint directories written by orbax itself (linen and nnx trees; OCDBT and one-folder-per-array;
zarr2 and zarr3; float32/bfloat16/float16; CheckpointManager layouts), read by hts's own OCDBT/zarr parser and
checked value by value against orbax's restore and α by α against a safetensors file of the same weights."""

from __future__ import annotations

import os
import shutil
import struct

import numpy as np
import pytest

pytest.importorskip("zstandard")
ocp = pytest.importorskip("orbax.checkpoint")
jax = pytest.importorskip("jax")
jnp = jax.numpy

import hts  # noqa: E402
from _st_writer import bf16_bytes, write as write_safetensors  # noqa: E402
from hts import ModelFileError  # noqa: E402
from hts.adapters.ocdbt import OcdbtStore  # noqa: E402
from hts.adapters.orbax_checkpoint import from_orbax  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


def _linen_params():
    nn = pytest.importorskip("flax.linen")

    class Net(nn.Module):
        @nn.compact
        def __call__(self, tokens, image):
            x = nn.Embed(96, 24)(tokens)
            y = nn.Conv(12, (3, 3))(image)
            return nn.Dense(40)(nn.Dense(48)(x)), y

    return Net().init(jax.random.PRNGKey(0), jnp.zeros((1, 4), jnp.int32), jnp.zeros((1, 8, 8, 6)))


def _save(path, tree, *, ocdbt=True, zarr3=False):
    ckpt = ocp.Checkpointer(ocp.PyTreeCheckpointHandler(use_ocdbt=ocdbt, use_zarr3=zarr3))
    ckpt.save(str(path), tree)
    return str(path)


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    """Checkpoints written once per module: {name: (folder, numpy tree of what was saved)}."""
    root = tmp_path_factory.mktemp("orbax")
    params = _linen_params()
    out = {}
    std = ocp.StandardCheckpointer()
    std.save(str(root / "standard"), params)
    std.wait_until_finished()
    out["standard"] = str(root / "standard")
    out["ocdbt_zarr3"] = _save(root / "oz3", params, zarr3=True)
    out["folders_zarr2"] = _save(root / "fz2", params, ocdbt=False)
    out["folders_zarr3"] = _save(root / "fz3", params, ocdbt=False, zarr3=True)
    nnx = pytest.importorskip("flax.nnx")

    class Model(nnx.Module):
        def __init__(self, rngs):
            self.lin = nnx.Linear(32, 20, param_dtype=jnp.bfloat16, rngs=rngs)
            self.emb = nnx.Embed(50, 16, param_dtype=jnp.float16, rngs=rngs)
            self.conv = nnx.Conv(4, 10, (3, 3), rngs=rngs)

    _, state = nnx.split(Model(nnx.Rngs(1)))
    out["nnx"] = _save(root / "nnx", state)
    out["nnx_zarr3"] = _save(root / "nnx3", state, ocdbt=False, zarr3=True)
    rng = np.random.default_rng(5)
    opt = {"params": {"Dense_0": {"kernel": rng.standard_normal((16, 12)).astype(np.float32)}},
           "opt_state": [{"mu": {"params": {"Dense_0": {"kernel": np.zeros((16, 12), np.float32)}}}}],
           "step": 7}
    out["optimizer"] = _save(root / "opt", opt, ocdbt=False)
    mngr = ocp.CheckpointManager(str(root / "manager"))
    for step in (3, 20):
        mngr.save(step, args=ocp.args.StandardSave(jax.tree.map(lambda a: a * step, params)))
    mngr.wait_until_finished()
    out["manager"] = str(root / "manager")
    return out, params, state


def _leaf(tree, key):
    node = tree
    for part in key.split("."):
        node = node[part]
    return np.asarray(getattr(node, "value", node))


def _torch_layout(t, w):
    if t.layer_type == "dense":
        return w.T
    if t.layer_type == "conv2d":
        return w.transpose(3, 2, 0, 1)
    return w


@pytest.mark.parametrize("name", ["standard", "ocdbt_zarr3", "folders_zarr2", "folders_zarr3"])
def test_linen_tree_values_and_types(ckpts, name):
    folders, params, _ = ckpts
    ts = from_orbax(folders[name])
    by = {t.key: t for t in ts}
    assert sorted(by) == ["params.Conv_0.kernel", "params.Dense_0.kernel", "params.Dense_1.kernel",
                          "params.Embed_0.embedding"]
    assert (by["params.Dense_0.kernel"].layer_type, by["params.Dense_0.kernel"].orientation) == ("dense", "in_out")
    assert by["params.Dense_0.kernel"].longname == "params.Dense_0"
    assert (by["params.Conv_0.kernel"].layer_type, by["params.Conv_0.kernel"].shape) == ("conv2d", (3, 3, 6, 12))
    assert by["params.Embed_0.embedding"].orientation == "out_in"
    for t in ts:
        assert t.source == "orbax" and t.dtype == "float32"
        np.testing.assert_array_equal(t.load(), _leaf(params, t.key))


def test_alpha_equals_safetensors_of_the_same_weights(ckpts, tmp_path):
    folders, params, state = ckpts
    for name, tree in (("standard", params), ("folders_zarr3", params), ("nnx", state)):
        tensors = {}
        for t in from_orbax(folders[name]):
            w = _torch_layout(t, _leaf(tree, t.key))
            if t.dtype == "bfloat16":
                tensors[t.longname + ".weight"] = ("BF16", np.ascontiguousarray(w).view(np.uint16).tobytes(),
                                                   list(w.shape))
            else:
                tensors[t.longname + ".weight"] = np.ascontiguousarray(w)
        st = tmp_path / f"{name}.safetensors"
        write_safetensors(st, tensors)
        a = {r["longname"]: r for r in hts.analyze(folders[name]).analysed}
        b = {r["longname"]: r for r in hts.analyze(str(st)).analysed}
        assert sorted(a) == sorted(b) and len(a) >= 3, name
        for layer in a:
            assert abs(a[layer]["alpha"] - b[layer]["alpha"]) <= 1e-12, (name, layer)
            assert abs(a[layer]["log_spectral_norm"] - b[layer]["log_spectral_norm"]) <= 1e-12


@pytest.mark.parametrize("name", ["nnx", "nnx_zarr3"])
def test_nnx_state_bfloat16_float16(ckpts, name):
    folders, _, state = ckpts
    by = {t.key: t for t in from_orbax(folders[name])}
    assert sorted(by) == ["conv.kernel", "emb.embedding", "lin.kernel"]  # nnx 'value' wrappers dropped
    lin, emb = by["lin.kernel"], by["emb.embedding"]
    assert (lin.dtype, lin.layer_type, emb.dtype, emb.layer_type) == ("bfloat16", "dense", "float16", "embedding")
    w = lin.load()
    assert w.dtype == np.float32
    np.testing.assert_array_equal(w, _leaf(state, "lin.kernel").astype(np.float32))
    np.testing.assert_array_equal(emb.load(), _leaf(state, "emb.embedding"))


def test_checkpoint_manager_root_step_and_item(ckpts, caplog):
    folders, params, _ = ckpts
    root = folders["manager"]
    with caplog.at_level("WARNING", logger="hts"):
        ts = hts.open(root)
    assert "reading the newest" in caplog.text and os.path.join(root, "20") in caplog.text
    by = {t.key: t for t in ts}
    np.testing.assert_array_equal(by["params.Dense_1.kernel"].load(), _leaf(params, "params.Dense_1.kernel") * 20)
    for folder in (os.path.join(root, "3"), os.path.join(root, "3", "default")):
        t = {t.key: t for t in hts.open(folder)}["params.Dense_1.kernel"]
        np.testing.assert_allclose(t.load(), _leaf(params, "params.Dense_1.kernel") * 3, rtol=1e-6)


def test_ocdbt_keys_match_tensorstore(ckpts):
    ts = pytest.importorskip("tensorstore")
    folder = os.path.abspath(ckpts[0]["standard"])
    kv = ts.KvStore.open({"driver": "ocdbt", "base": "file://" + folder + "/"}).result()
    want = {k: kv.read(k).result().value for k in kv.list().result()}
    store = OcdbtStore(folder)
    assert {k: store.read(r) for k, r in store.entries.items()} == want


def test_ocdbt_interior_nodes_and_out_of_line_values(tmp_path):
    """A database written by tensorstore with tiny nodes: a B+tree several levels deep, a version tree, values
    stored both inline and in data files."""
    ts = pytest.importorskip("tensorstore")
    kv = ts.KvStore.open({"driver": "ocdbt", "base": f"file://{tmp_path}/",
                          "config": {"max_decoded_node_bytes": 300, "max_inline_value_bytes": 20}}).result()
    rng = np.random.default_rng(0)
    want = {}
    for i in range(120):
        want[f"k/{i:04d}/v".encode()] = rng.bytes(i % 45)
        kv.write(f"k/{i:04d}/v".encode(), want[f"k/{i:04d}/v".encode()]).result()
    store = OcdbtStore(str(tmp_path))
    assert {k: store.read(r) for k, r in store.entries.items()} == want
    assert {r.inline is None for r in store.entries.values()} == {True, False}


def test_ocdbt_entries_columns_behave_like_a_dict_in_key_order():
    from hts.adapters.ocdbt import Entries, ValueRef

    e = Entries()
    meta = b'{"zarr_format": 3, "shape": [2, 2]}'.ljust(Entries._SHARED + 1)
    e.add(b"a/.zarray", len(meta), inline=bytearray(meta))
    e.add(b"a/0.0", 10, file="/d/f1", offset=7)
    e.add(b"b/.zarray", len(meta), inline=meta)  # stored once for both
    e.add(b"b/0.0", 3, inline=b"xyz")
    e.add(b"c/0.0", 0, file="/d/f2", offset=0)
    assert list(e) == [b"a/.zarray", b"a/0.0", b"b/.zarray", b"b/0.0", b"c/0.0"] and len(e) == 5
    assert e[b"a/.zarray"] == e[b"b/.zarray"] == ValueRef(len(meta), inline=meta) and len(e._inline) == len(meta) + 3
    assert e[b"b/0.0"] == ValueRef(3, inline=b"xyz")
    assert e.get(b"a/0.0") == ValueRef(10, file="/d/f1", offset=7) and e.get(b"a/1.0") is None
    assert b"c/0.0" in e and b"" not in e and b"d" not in e
    assert list(e.keys_from(b"a/")) == [b"a/.zarray", b"a/0.0"] and list(e.keys_from(b"d")) == []
    for key in (b"c/0.0", b"a"):  # repeated, or before the last key
        with pytest.raises(ValueError, match="strictly increasing"):
            e.add(key, 1, inline=b"x")


# --- hostile checkpoints: each with its exact error ------------------------------------------------------------

def _copy(ckpts, tmp_path, name="standard"):
    dst = tmp_path / name
    shutil.copytree(ckpts[0][name], dst)
    return dst


def _crc_fix(raw: bytearray) -> bytes:
    from hts.adapters.crc32c import crc32c

    raw[-4:] = struct.pack("<I", crc32c(bytes(raw[:-4])))
    return bytes(raw)


def test_truncated_manifest(ckpts, tmp_path):
    d = _copy(ckpts, tmp_path)
    m = d / "manifest.ocdbt"
    m.write_bytes(m.read_bytes()[:-7])
    with pytest.raises(ModelFileError, match=r"manifest.ocdbt: manifest says it is \d+ bytes long but \d+ were "
                                             r"stored \(truncated\?\)"):
        from_orbax(d)


def test_bad_crc(ckpts, tmp_path):
    d = _copy(ckpts, tmp_path)
    m = d / "manifest.ocdbt"
    raw = bytearray(m.read_bytes())
    raw[20] ^= 0x40
    m.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match=r"manifest.ocdbt: manifest fails its CRC-32C check \(corrupt\)"):
        from_orbax(d)


def test_data_file_path_traversal(ckpts, tmp_path):
    """The manifest's data-file table rewritten (uncompressed body, CRC recomputed) to name ../outside."""
    from hts.adapters.compression import decompress

    d = _copy(ckpts, tmp_path)
    m = d / "manifest.ocdbt"
    raw = m.read_bytes()
    body = decompress("zstd", raw[14:-4], 1 << 20, str(m))
    old = next(os.path.join("d", n) for n in os.listdir(d / "d")).encode()
    (tmp_path / "evil").mkdir()
    evil = b"../evil/" + old[len(b"../evil/"):]
    assert len(evil) == len(old) and old in body
    body = body.replace(old, evil)
    new = bytearray(struct.pack(">I", 0x0CDB3A2A) + struct.pack("<Q", 14 + len(body) + 4) + b"\x00\x00" + body
                    + b"\0\0\0\0")
    m.write_bytes(_crc_fix(new))
    with pytest.raises(ModelFileError, match=r"data file path '\.\./evil/.*' is not a plain relative path inside "
                                             r"the checkpoint \(refused\)"):
        from_orbax(d)


def test_symlinked_data_folder_out_of_the_checkpoint(ckpts, tmp_path):
    d = _copy(ckpts, tmp_path, "folders_zarr2")
    outside = tmp_path / "outside"
    shutil.move(str(d / "params.Dense_0.kernel"), outside)
    os.symlink(outside, d / "params.Dense_0.kernel")
    with pytest.raises(ModelFileError, match=r"resolves outside the checkpoint directory \(a symlink\?\); refused"):
        from_orbax(d)


def test_huge_claimed_shape(ckpts, tmp_path):
    d = _copy(ckpts, tmp_path, "folders_zarr2")
    z = d / "params.Dense_0.kernel" / ".zarray"
    meta = z.read_text()
    z.write_text(meta.replace('"shape":[48,40]', '"shape":[200000,300000]').replace('"chunks":[48,40]',
                                                                                   '"chunks":[2000,3000]'))
    (t,) = [t for t in from_orbax(d) if t.key == "params.Dense_0.kernel"]
    assert t.shape == (200000, 300000)
    with pytest.raises(ModelFileError, match=r"params.Dense_0.kernel/.zarray, tensor 'params.Dense_0.kernel': shape "
                                             r"\(200000, 300000\) of float32 declares 240000000000 bytes, more than "
                                             r"the 17179869184 a tensor may \(hts.adapters.limits.MAX_TENSOR_BYTES; "
                                             r"refused before allocation\)"):
        t.load()
    z.write_text(meta.replace('"chunks":[48,40]', '"chunks":[48000,40]'))  # a chunk 1,000 times the array
    (t,) = [t for t in from_orbax(d) if t.key == "params.Dense_0.kernel"]
    with pytest.raises(ModelFileError, match=r"tensor 'params.Dense_0.kernel': chunk shape \(48000, 40\) "
                                             r"\(7680000 bytes\) is larger than shape \(48, 40\) of float32 "
                                             r"\(7680 bytes\) by more than 1 MiB \(a false chunk shape; refused\)"):
        t.load()
    z.write_text(meta.replace('"shape":[48,40]', '"shape":[2000000000,3000000]'))
    with pytest.raises(ModelFileError, match=r"claims more than 2\^40 elements \(refused\)"):
        from_orbax(d)
    z.write_text(meta.replace('"shape":[48,40]', '"shape":[200000,300000]'))
    with pytest.raises(ModelFileError, match=r"makes more than 2\^20 chunks \(refused\)"):
        from_orbax(d)


@pytest.mark.parametrize("codec", ["zstd", "zstd-unsized", "gzip", "zlib"])
def test_decompression_stops_at_its_limit(codec):
    """64 MiB of zeros (~2-64 kB compressed) decoded with a 1 MiB limit: refused, having allocated about the
    limit (its declared size), never the stream's size; with the exact limit, decoded into one buffer."""
    import gzip
    import tracemalloc
    import zlib

    import zstandard
    from hts.adapters.compression import decompress

    raw = bytes(64 * 2**20)
    blob = {"zstd": lambda: zstandard.ZstdCompressor().compress(raw),
            "zstd-unsized": lambda: zstandard.ZstdCompressor(write_content_size=False).compress(raw),
            "gzip": lambda: gzip.compress(raw), "zlib": lambda: zlib.compress(raw)}[codec]()
    name = codec.split("-")[0]
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match=rf"x.bin, tensor 't': {name} (frame claims 67108864 bytes, more "
                                                 rf"than|data decompresses to more than) the 1048576"):
            decompress(name, blob, 2**20, "x.bin", tensor="t", exact=codec != "zlib")
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        assert decompress(name, blob, len(raw), "x.bin", exact=True) == raw
        whole = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    piece = 2**20  # the decoder's working pieces (256 kB of input or output, copies of them), its window
    assert peak <= 2**20 + piece + len(blob), peak
    assert whole <= len(raw) + piece + len(blob), whole


def test_zstd_bomb(ckpts, tmp_path):
    import zstandard

    d = _copy(ckpts, tmp_path, "folders_zarr2")
    (chunk,) = [p for p in (d / "params.Dense_0.kernel").iterdir() if p.name != ".zarray"]
    chunk.write_bytes(zstandard.ZstdCompressor().compress(bytes(50 * 2**20)))
    (t,) = [t for t in from_orbax(d) if t.key == "params.Dense_0.kernel"]
    with pytest.raises(ModelFileError, match=r"tensor 'params.Dense_0.kernel': zstd frame claims 52428800 bytes, "
                                             r"more than the 7680 the metadata allows"):
        t.load()
    stream = zstandard.ZstdCompressor(write_content_size=False).compress(bytes(50 * 2**20))
    chunk.write_bytes(stream)
    with pytest.raises(ModelFileError, match=r"zstd data decompresses to more than the 7680 bytes the metadata "
                                             r"allows"):
        t.load()


def test_all_zero_matrix_loads_and_is_analysed_like_its_safetensors_twin(tmp_path):
    """A constant tensor compresses far beyond any fixed ratio (orbax stores these 16 MiB of zeros as ~530 bytes
    of zstd): it is read at its declared size, and its row says what hts says of a zero matrix from any format."""
    w = np.zeros((2048, 2048), np.float32)
    folder = _save(tmp_path / "zero", {"params": {"Dense_0": {"kernel": w}}})
    (t,) = from_orbax(folder)
    np.testing.assert_array_equal(t.load(), w)
    write_safetensors(tmp_path / "zero.safetensors", {"Dense_0.weight": w.T})
    orbax_row, = hts.analyze(folder).rows
    st_row, = hts.analyze(tmp_path / "zero.safetensors").rows
    assert orbax_row["status"] == st_row["status"] == "failed", orbax_row
    assert orbax_row["reason"] == st_row["reason"] and "eigenvalues" in orbax_row["reason"], orbax_row
    assert (orbax_row["N"], orbax_row["M"], orbax_row["log_norm"]) == (st_row["N"], st_row["M"], -np.inf)


def test_zstd_bomb_in_a_large_declared_chunk(tmp_path):
    """A 1 MiB chunk whose zstd stream inflates to 64 MiB: refused once the output passes the chunk's declared
    size, whether the frame states its size or not."""
    import zstandard

    folder = _save(tmp_path / "b", {"params": {"Dense_0": {"kernel": np.ones((512, 512), np.float32)}}},
                   ocdbt=False)
    (chunk,) = [p for p in (tmp_path / "b" / "params.Dense_0.kernel").iterdir() if p.name != ".zarray"]
    for sized in (True, False):
        chunk.write_bytes(zstandard.ZstdCompressor(write_content_size=sized).compress(bytes(64 * 2**20)))
        (t,) = from_orbax(folder)
        with pytest.raises(ModelFileError, match=r"params.Dense_0.kernel/.zarray, tensor 'params.Dense_0.kernel': "
                                                 r"zstd (frame claims 67108864 bytes, more than|data decompresses "
                                                 r"to more than) the 1048576"):
            t.load()


def test_cli_describe_and_analyze(ckpts, capsys):
    """In process (the jax-free CLI path is the same; a subprocess would re-import nothing new)."""
    from hts.cli import main

    folder = ckpts[0]["folders_zarr3"]
    assert main(["describe", folder]) == 0
    out = capsys.readouterr().out
    assert "format orbax" in out and "storage" in out
    assert "zarr3 sharded (zstd), shards 24x48, chunks 24x48" in out
    assert main(["describe", ckpts[0]["standard"], "--format", "json"]) == 0
    rows = __import__("json").loads(capsys.readouterr().out)["tensors"]
    assert {r["storage"] for r in rows} == {"zarr2 zstd, chunks 24x48", "zarr2 zstd, chunks 3x3x6x12",
                                            "zarr2 zstd, chunks 48x40", "zarr2 zstd, chunks 96x24"}
    assert main(["analyze", ckpts[0]["standard"], "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert "params.Dense_0" in out and "params.Conv_0" in out


def test_opening_the_manifest_file_reads_its_checkpoint(ckpts):
    folder = ckpts[0]["standard"]
    inv = hts.open(os.path.join(folder, "manifest.ocdbt"))
    assert [t.key for t in inv] == [t.key for t in from_orbax(folder)]


def test_optimizer_state_listed_with_a_reason(ckpts):
    by = {t.key: t for t in from_orbax(ckpts[0]["optimizer"])}
    assert sorted(by) == ["opt_state.0.mu.params.Dense_0.kernel", "params.Dense_0.kernel"]
    assert by["opt_state.0.mu.params.Dense_0.kernel"].skip_reason == "optimizer state, not a weight"
    assert not by["params.Dense_0.kernel"].skip_reason


@pytest.mark.parametrize("name", ["standard", "folders_zarr2"])
def test_without_metadata_the_arrays_come_from_the_zarr_keys(ckpts, tmp_path, name):
    d = _copy(ckpts, tmp_path, name)
    os.unlink(d / "_METADATA")
    assert sorted(t.key for t in from_orbax(d)) == sorted(t.key for t in from_orbax(ckpts[0][name]))
    np.testing.assert_array_equal(from_orbax(d)[0].load(), from_orbax(ckpts[0][name])[0].load())


@pytest.mark.parametrize("ocdbt,zarr3", [(True, False), (False, True)], ids=["ocdbt-zarr2", "folders-zarr3"])
def test_listing_reads_metadata_only_and_load_holds_one_chunk(tmp_path, ocdbt, zarr3):
    import tracemalloc

    w = np.random.default_rng(6).standard_normal((1024, 2048)).astype(np.float32)  # 8 MiB
    folder = _save(tmp_path / "big", {"params": {"Dense_0": {"kernel": w}}}, ocdbt=ocdbt, zarr3=zarr3)
    tracemalloc.start()
    try:
        (t,) = from_orbax(folder)
        listing = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        got = t.load()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(got, w)
    assert listing < 2**20, listing
    # the tensor + one decoded chunk (here the whole tensor: Orbax's default chunking) + its stored bytes
    assert peak <= w.nbytes * (2 if not zarr3 else 3) + 2**20, (peak, w.nbytes)


def test_chunk_keys_out_of_range_are_refused(ckpts, tmp_path):
    d = _copy(ckpts, tmp_path, "folders_zarr2")
    (d / "params.Dense_0.kernel" / "7.0").write_bytes(b"x")
    (t,) = [t for t in from_orbax(d) if t.key == "params.Dense_0.kernel"]
    with pytest.raises(ModelFileError, match=r"tensor 'params.Dense_0.kernel': chunk key '7.0' names no chunk of "
                                             r"shape \(48, 40\) in chunks \(48, 40\) \(out of range or malformed; "
                                             r"refused\)"):
        t.load()


def test_older_orbax_msgpack_tree_with_placeholders_next_to_zarr_arrays(ckpts, tmp_path):
    """Older Orbax wrote the tree as a msgpack 'checkpoint' whose array leaves are placeholder strings; the
    arrays themselves are the zarr folders next to it, which are what hts reads."""
    msgpack = pytest.importorskip("msgpack")
    d = _copy(ckpts, tmp_path, "folders_zarr2")
    os.unlink(d / "_METADATA")
    (d / "checkpoint").write_bytes(msgpack.packb(
        {"params": {"Dense_0": {"kernel": "PLACEHOLDER://params.Dense_0.kernel"}}}))
    inv = hts.open(d)
    assert inv.weights_file == str(d) and {t.source for t in inv} == {"orbax"}
    assert sorted(t.key for t in inv) == sorted(t.key for t in from_orbax(ckpts[0]["folders_zarr2"]))
