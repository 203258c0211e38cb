"""Bounded memory for every reader (issue 19 item 9): a large hostile file — a flood of tiny tensors, or one
header claiming a huge shape — is read (or refused with ``ModelFileError``) with peak memory at most
4 × the file's size + the largest tensor loaded (+ ``SLACK``, fixed), measured as the peak RSS (``VmHWM``) of
a fresh process (``tests/_memory_probe.py``; the interpreter's and the libraries' own pages are excluded). For an
Orbax checkpoint, a directory, the file size is its files' sizes together.
PyTorch checkpoints are held to it by counting their tensors before torch builds them and refusing a flood
that would cost more (``hts.adapters.limits.torch_tensor_budget``).

The files are tens of MB (the fuzz tests only ever use files of a few kB). Limits: docs/formats.md.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
from _floods import write_empty_safetensors_flood, write_keras_flood

import hts

from hts.adapters.limits import torch_tensor_budget

PROBE = os.path.join(os.path.dirname(__file__), "_memory_probe.py")
MB = 2**20
#: RSS counts pages, the interpreter's allocator keeps arenas: a few MB of slack on top of the bound.
SLACK = 16 * MB


def probe(path, *preload: str) -> dict:
    proc = subprocess.run([sys.executable, PROBE, str(path), *preload], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _files_size(path) -> int:
    """A file's size, or the size of a folder's files together (an Orbax checkpoint)."""
    if not os.path.isdir(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(here, f)) for here, _, files in os.walk(path) for f in files)


def check_bounded(path, *preload: str, outcome: str | None = None) -> dict:
    size = _files_size(path)
    got = probe(path, *preload)
    used = got["peak"] - got["base"]
    bound = 4 * size + got["largest"] + SLACK
    assert used <= bound, (f"{os.path.basename(str(path))}: {used / MB:.0f} MB peak for a {size / MB:.0f} MB "
                           f"file (bound {bound / MB:.0f} MB): {got}")
    if outcome:
        assert got["outcome"] == outcome, got
    print(f"{os.path.basename(str(path))}: {size / MB:.1f} MB file, {used / MB:.1f} MB peak, {got['outcome']}, "
          f"{got['tensors']} tensors, largest {got['largest']} B")
    return got


# --- safetensors ---------------------------------------------------------------------------------------------
def _safetensors(path, header: dict, data: bytes) -> None:
    raw = json.dumps(header, separators=(",", ":")).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)


def test_safetensors_flood_of_tiny_tensors(tmp_path):
    n = 60_000
    header = {f"model.layers.{i}.w": {"dtype": "F32", "shape": [1, 1], "data_offsets": [4 * i, 4 * i + 4]}
              for i in range(n)}
    path = tmp_path / "flood.safetensors"
    _safetensors(path, header, np.arange(n, dtype=np.float32).tobytes())
    assert os.path.getsize(path) > 4 * MB
    check_bounded(path)


def test_safetensors_flood_of_empty_tensors_with_short_names(tmp_path):
    """The cheapest entry per tensor: a short name and no data (~50 bytes of header each), as many as a file
    may hold; the issue's bound, 4 × file size, leaves ~200 bytes per tensor."""
    from hts.adapters.limits import MAX_TENSORS

    n = MAX_TENSORS - 100
    path = tmp_path / "empty.safetensors"
    write_empty_safetensors_flood(path, n)
    got = check_bounded(path, outcome="read")
    assert got["tensors"] == n


@pytest.mark.parametrize("damage", ["duplicate", "bad entry", "syntax", "overlap"])
def test_safetensors_large_flood_damaged_at_the_end(tmp_path, damage):
    """A 60,000-tensor header whose last member is wrong: refused, naming what, within the bound (the header is
    walked whole before a duplicate name or a bad member is reported)."""
    n = 60_000
    entry = '"model.layers.%d.w":{"dtype":"F32","shape":[1,1],"data_offsets":[%d,%d]}'
    members = [entry % (i, 4 * i, 4 * i + 4) for i in range(n)]
    members[-1] = {"duplicate": entry % (0, 4 * n - 4, 4 * n),
                   "bad entry": '"x":{"dtype":"F32","shape":[2],"data_offsets":[%d,%d]}' % (4 * n - 4, 4 * n),
                   "syntax": entry % (n - 1, 4 * n - 4, 4 * n) + ",",
                   "overlap": entry % (n - 1, 0, 4)}[damage]
    raw = ("{" + ",".join(members) + "}").encode()
    path = tmp_path / "damaged.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(4 * n))
    got = check_bounded(path, outcome="refused")
    assert {"duplicate": "duplicate key", "bad entry": "needs 8 bytes", "syntax": "not valid JSON",
            "overlap": "overlap"}[damage] in got["message"], got["message"]


def test_safetensors_huge_claimed_shape_in_a_large_file(tmp_path):
    data = np.zeros(8 * MB // 4, np.float32).tobytes()
    header = {"a.weight": {"dtype": "F32", "shape": [1 << 20, 1 << 20], "data_offsets": [0, len(data)]}}
    path = tmp_path / "claim.safetensors"
    _safetensors(path, header, data)
    check_bounded(path, outcome="refused")


def test_safetensors_header_bomb_of_empty_objects(tmp_path):
    n = 3_000_000  # a legal JSON header of ~40 MB: refused before it is parsed (tensor count)
    raw = ("{" + ",".join(f'"{i:x}":{{}}' for i in range(n)) + "}").encode()
    path = tmp_path / "bomb.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)
    assert os.path.getsize(path) > 30 * MB
    check_bounded(path, outcome="refused")


# --- PyTorch checkpoints -------------------------------------------------------------------------------------
@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_torch_flood_of_tiny_tensors_is_refused_within_the_bound(tmp_path, zipped):
    torch = pytest.importorskip("torch")
    n = 20_000
    if zipped:  # a zip member per storage costs ~300 bytes of file: the dense flood is many views of one storage
        base = torch.arange(2 * n, dtype=torch.float32)
        state = {f"layers.{i}.weight": base[2 * i:2 * i + 2].view(1, 2) for i in range(n)}
    else:
        state = {f"layers.{i}.weight": torch.full((1, 2), float(i)) for i in range(n)}
    path = tmp_path / "flood.pt"
    torch.save(state, path, _use_new_zipfile_serialization=zipped)
    del state
    size = os.path.getsize(path)
    assert n > torch_tensor_budget(size, "zip" if zipped else "legacy"), size
    check_bounded(path, "torch", outcome="refused")
    with pytest.raises(hts.ModelFileError, match=r"20000 tensors in a .*save the state dict as safetensors"):
        hts.open(path)


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_torch_many_small_tensors_are_read_within_the_bound(tmp_path, zipped):
    torch = pytest.importorskip("torch")
    n = 8_000
    state = {f"layers.{i}.weight": torch.full((16, 16), float(i)) for i in range(n)}
    path = tmp_path / "many.pt"
    torch.save(state, path, _use_new_zipfile_serialization=zipped)
    del state
    assert n <= torch_tensor_budget(os.path.getsize(path), "zip" if zipped else "legacy")
    got = check_bounded(path, "torch", outcome="read")
    assert got["tensors"] == n


# --- numpy ---------------------------------------------------------------------------------------------------
def test_npz_flood_of_members(tmp_path):
    path = tmp_path / "flood.npz"
    np.savez(path, **{f"w{i}": np.full((2, 2), i, np.float32) for i in range(15_000)})
    assert os.path.getsize(path) > 2 * MB
    check_bounded(path)


def test_npy_huge_claimed_shape(tmp_path):
    path = tmp_path / "claim.npy"
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1048576, 1048576), }"
    header += " " * (63 - (len(header) + 10) % 64) + "\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode()
                     + bytes(16 * MB))
    check_bounded(path, outcome="refused")


# --- GGUF ----------------------------------------------------------------------------------------------------
def test_gguf_flood_of_tiny_tensors(tmp_path):
    pytest.importorskip("gguf")
    import _gguf_files

    tensors = {f"blk.{i}.ffn_up.weight": np.full((2, 256), i, np.float32) for i in range(20_000)}
    path = _gguf_files.write(tmp_path / "flood.gguf", tensors)
    assert os.path.getsize(path) > 4 * MB
    check_bounded(path)


def test_gguf_flood_of_the_cheapest_tensors(tmp_path):
    """Empty tensors (~44 bytes of header each, no data), as many as a file may hold: before the listing was
    kept as columns (``gguf_format.GGUFTensors``, ``gguf_file.GGUFTensorList``) this took 225 MB for 8.5 MB."""
    pytest.importorskip("gguf")
    import _gguf_files

    from hts.adapters.limits import MAX_TENSORS

    path = _gguf_files.write_empty_flood(tmp_path / "empty.gguf", MAX_TENSORS - 100)
    got = check_bounded(path, outcome="read")
    assert got["tensors"] == MAX_TENSORS - 100


def test_gguf_flood_of_small_metadata_arrays(tmp_path):
    """100,000 metadata entries, each a 64-item u8 array under a 3-byte key (83 bytes each in a version-1 file,
    7.9 MB): kept, a list of 64 ints, a key and a dict entry each cost ~8 x the file; the entries past
    ``MAX_KEPT_METADATA`` values are read, checked and counted, not kept, and the keys are checked unique by
    hash."""
    n = 100_000

    def s(raw: bytes) -> bytes:
        return struct.pack("<I", len(raw)) + raw

    out = [b"GGUF" + struct.pack("<III", 1, 1, n + 1), s(b"general.architecture") + struct.pack("<I", 8) + s(b"llama")]
    value = struct.pack("<III", 9, 0, 64) + bytes(range(64))  # ARRAY of 64 UINT8
    out.extend(s(bytes((33 + i % 94, 33 + i // 94 % 94, 33 + i // 8836))) + value for i in range(n))
    out.append(s(b"0.weight") + struct.pack("<IIIQ", 1, 0, 0, 0))
    raw = b"".join(out)
    path = tmp_path / "meta.gguf"
    path.write_bytes(raw + b"\0" * (-len(raw) % 32))
    del out, raw
    assert check_bounded(path, outcome="read")["tensors"] == 1


# --- ONNX ----------------------------------------------------------------------------------------------------
def test_onnx_flood_of_initializers(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    n = 40_000
    value = np.ones((16, 16), np.float32).tobytes()
    inits = [helper.make_tensor(f"w{i}", TensorProto.FLOAT, [16, 16], value, raw=True) for i in range(n)]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w0"], ["y"])], "flood", [x], [y], inits)
    path = tmp_path / "flood.onnx"
    onnx.save(helper.make_model(graph), str(path))
    del inits, graph
    assert os.path.getsize(path) > 30 * MB
    assert check_bounded(path, "onnx", outcome="read")["tensors"] == n


def _onnx_flood(path, initializers: int, nodes: int) -> None:
    """``initializers`` 1×1 float initializers (~22 bytes of file each, the cheapest) and ``nodes`` Identity
    nodes (~28 bytes each) after one MatMul."""
    from onnx import TensorProto, helper, save

    one = np.ones((1, 1), np.float32).tobytes()
    inits = [helper.make_tensor(f"w{i}", TensorProto.FLOAT, [1, 1], one, raw=True) for i in range(initializers)]
    chain = [helper.make_node("Identity", [f"y{i}"], [f"y{i + 1}"]) for i in range(nodes)]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1])
    y = helper.make_tensor_value_info(f"y{nodes}", TensorProto.FLOAT, [1, 1])
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w0"], ["y0"]), *chain], "flood", [x], [y], inits)
    save(helper.make_model(graph), str(path))


@pytest.mark.parametrize("initializers, nodes", [(40_000, 0), (1, 40_000)], ids=["initializers", "nodes"])
def test_onnx_flood_of_the_cheapest_entries_is_refused_within_the_bound(tmp_path, initializers, nodes):
    """~1.4 KiB of protobuf and hts objects per 1×1 initializer (~2.4 KiB with its row in hts.analyze) and
    ~0.9 KiB per node, for ~22-28 bytes of file: 40,000 took 51 MB (initializers) and 31 MB (nodes) for ~1 MB of
    file, against a 19-20 MB bound; refused now at a 3 MB peak. A graph that would
    cost more than the bound allows is refused before protobuf builds it (limits.onnx_graph_budget)."""
    pytest.importorskip("onnx")
    path = tmp_path / "flood.onnx"
    _onnx_flood(path, initializers, nodes)
    check_bounded(path, "onnx", outcome="refused")
    with pytest.raises(hts.ModelFileError, match=r"flood\.onnx: .* a flood of tiny tensors or nodes, not a model"):
        hts.open(path)


# --- Flax msgpack --------------------------------------------------------------------------------------------
def test_flax_flood_of_tiny_arrays(tmp_path):
    msgpack = pytest.importorskip("msgpack")

    def ext(a):
        return msgpack.ExtType(1, msgpack.packb((a.shape, a.dtype.name, a.tobytes("C")), use_bin_type=True))

    state = {"params": {f"Dense_{i}": {"kernel": ext(np.full((2, 2), i, np.float32))} for i in range(50_000)}}
    path = tmp_path / "flood.msgpack"
    path.write_bytes(msgpack.packb(state, use_bin_type=True))
    del state
    assert os.path.getsize(path) > 2 * MB
    check_bounded(path)


# --- Keras (HDF5) --------------------------------------------------------------------------------------------
def test_keras_weights_flood_of_layers(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "flood.weights.h5"
    with h5py.File(path, "w") as f:
        layers = f.create_group("layers")
        for i in range(3_000):
            g = layers.create_group(f"dense_{i}").create_group("vars")
            g.create_dataset("0", data=np.full((32, 32), i, np.float32))
    assert os.path.getsize(path) > 2 * MB
    check_bounded(path, "h5py")


def test_keras_weights_flood_of_tiny_datasets(tmp_path):
    """The cheapest tensors a Keras weights file lists (~300 bytes each): 50,000 took 81-86 MB for 14 MB of file
    (bound 73 MB) while a record and its loader were made per tensor; a tuple per tensor now (44 MB)."""
    pytest.importorskip("h5py")
    path = tmp_path / "tiny.weights.h5"
    write_keras_flood(path, 50_000)
    assert check_bounded(path, "h5py")["tensors"] == 50_000
    # hts.analyze of the same file keeps its skipped rows compactly (a lazily listed file): 126 MB with a record
    # and a row dict per tensor; ~51 MB now
    got = probe("--analyze", str(path))
    assert got["peak"] - got["base"] <= 4 * os.path.getsize(path) + SLACK, got


# --- Orbax checkpoints (a directory: its files' sizes together) -----------------------------------------------
def _orbax_save(path, tree, *, ocdbt=True, zarr3=False) -> str:
    pytest.importorskip("zstandard")
    ocp = pytest.importorskip("orbax.checkpoint")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ocp.Checkpointer(ocp.PyTreeCheckpointHandler(use_ocdbt=ocdbt, use_zarr3=zarr3)).save(str(path), tree)
    return str(path)


def test_orbax_flood_of_tiny_arrays(tmp_path):
    """Orbax's default layout (OCDBT + zarr2) holding 8,000 2×2 arrays in ~2 MB of files (~250 bytes an array:
    most of it ``_METADATA``; the OCDBT node holding every key, zarr metadata and chunk is ~90 kB of zstd).
    Before the listing was held as columns (``ocdbt.Entries``, ``_OrbaxTensors``) it peaked at ~3.6 kB an array."""
    n = 8_000
    tree = {"params": {f"Dense_{i}": {"kernel": np.full((2, 2), i, np.float32)} for i in range(n)}}
    folder = _orbax_save(tmp_path / "flood", tree)
    del tree
    got = check_bounded(folder, "zstandard", outcome="read")
    assert got["tensors"] == n


def test_orbax_all_zero_matrix_is_read_at_its_declared_size(tmp_path):
    """64 MiB of zeros stored as ~2 kB of zstd: read (no ratio guard), within the bound its own size sets."""
    folder = _orbax_save(tmp_path / "zero", {"params": {"Dense_0": {"kernel": np.zeros((4096, 4096), np.float32)}}})
    assert _files_size(folder) < 64 * 2**10
    got = check_bounded(folder, "zstandard", outcome="read")
    assert got["largest"] == 4096 * 4096 * 4


def test_orbax_huge_claimed_shape(tmp_path):
    """A 1 MiB array whose metadata claims 2^36 float32 elements (256 GiB): refused before allocation."""
    folder = _orbax_save(tmp_path / "claim", {"params": {"Dense_0": {"kernel": np.ones((512, 512), np.float32)}}},
                         ocdbt=False)
    z = tmp_path / "claim" / "params.Dense_0.kernel" / ".zarray"
    z.write_text(z.read_text().replace('"shape":[512,512]', '"shape":[262144,262144]'))
    got = check_bounded(folder, "zstandard", outcome="refused")
    assert "MAX_TENSOR_BYTES" in got["message"], got


@pytest.mark.parametrize("sized", [True, False], ids=["size-in-frame", "no-size-in-frame"])
def test_orbax_zstd_chunk_inflating_far_beyond_its_declared_size(tmp_path, sized):
    """A 4 MiB chunk replaced by ~32 kB of zstd that inflates to 1 GiB: refused at 4 MiB of output (or from
    the frame's header when it states its size)."""
    zstandard = pytest.importorskip("zstandard")
    folder = _orbax_save(tmp_path / "bomb", {"params": {"Dense_0": {"kernel": np.ones((1024, 1024), np.float32)}}},
                         ocdbt=False)
    (chunk,) = [p for p in (tmp_path / "bomb" / "params.Dense_0.kernel").iterdir() if p.name != ".zarray"]
    with open(chunk, "wb") as f, zstandard.ZstdCompressor(write_content_size=sized).stream_writer(
            f, size=2**30 if sized else -1) as w:
        piece = bytes(2**24)
        for _ in range(64):
            w.write(piece)
    got = check_bounded(folder, "zstandard", outcome="refused")
    assert "tensor 'params.Dense_0.kernel': zstd" in got["message"] and "4194304" in got["message"], got
