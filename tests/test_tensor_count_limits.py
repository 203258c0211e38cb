"""Every reader refuses a file holding more than ``limits.MAX_TENSORS`` tensors before it builds them, with a
``ModelFileError`` naming the file (issue 19 item 9). The limit is lowered here so the files stay small; the
memory each listed tensor costs is measured in tests/test_reader_memory.py."""

from __future__ import annotations

import numpy as np
import pytest

from hts import ModelFileError
from hts.adapters import limits
from hts.adapters.files import read_file

N = 40


def refused(path) -> str:
    with pytest.raises(ModelFileError) as info:
        read_file(str(path))
    message = str(info.value)
    assert str(path) in message and f"the {N - 1}" in message, message
    return message


def read(path) -> int:
    return len(read_file(str(path)))


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_torch(tmp_path, monkeypatch, zipped):
    torch = pytest.importorskip("torch")
    path = tmp_path / "m.pt"
    torch.save({f"l{i}.weight": torch.ones(3, 2) * i for i in range(N)}, path, _use_new_zipfile_serialization=zipped)
    assert read(path) == N
    monkeypatch.setattr(limits, "MAX_TENSORS", N - 1)
    refused(path)


def test_npz(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    np.savez(path, **{f"w{i}": np.ones((3, 2), np.float32) for i in range(N)})
    assert read(path) == N
    monkeypatch.setattr(limits, "MAX_TENSORS", N - 1)
    refused(path)


def test_gguf(tmp_path, monkeypatch):
    pytest.importorskip("gguf")
    import _gguf_files

    path = _gguf_files.write(tmp_path / "m.gguf", {f"blk.{i}.ffn_up.weight": np.ones((2, 32), np.float32)
                                                   for i in range(N)})
    assert read(path) == N
    monkeypatch.setattr(limits, "MAX_TENSORS", N - 1)
    refused(path)


def test_onnx(tmp_path, monkeypatch):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    inits = [helper.make_tensor(f"w{i}", TensorProto.FLOAT, [2, 2], np.ones(4, np.float32).tobytes(), raw=True)
             for i in range(N)]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w0"], ["y"])], "g", [x], [y], inits)
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph), str(path))
    assert read(path) == N
    monkeypatch.setattr(limits, "MAX_TENSORS", N - 1)
    refused(path)


def test_flax(tmp_path, monkeypatch):
    msgpack = pytest.importorskip("msgpack")

    def ext(a):
        return msgpack.ExtType(1, msgpack.packb((a.shape, a.dtype.name, a.tobytes("C")), use_bin_type=True))

    path = tmp_path / "m.msgpack"
    path.write_bytes(msgpack.packb({"params": {f"Dense_{i}": {"kernel": ext(np.ones((3, 2), np.float32))}
                                               for i in range(N)}}, use_bin_type=True))
    assert read(path) == N
    monkeypatch.setattr(limits, "MAX_TENSORS", N - 1)
    refused(path)


def test_safetensors_uses_the_same_limit():
    from hts.adapters import safetensors_file

    assert safetensors_file.MAX_TENSORS == limits.MAX_TENSORS
