"""Files are recognised by content: non-models say what they are, mis-named models are read by what they are."""

from __future__ import annotations

import gzip
import json
import logging
import zipfile

import numpy as np
import pytest

import _st_writer as writer
import hts
from hts.adapters import sniff as sniff_module
from hts.adapters.sniff import model_kind, sniff


def test_a_readme_is_not_a_model_file(tmp_path):
    (tmp_path / "README.md").write_text("# My model\n\nTrained on ... ünïcode\n")
    with pytest.raises(hts.ModelFileError, match=r"README.md: not a model file \(looks like text\)"):
        hts.analyze(tmp_path / "README.md")


@pytest.mark.parametrize("content, looks", [
    (b"this is not a checkpoint\n", "looks like text"),
    (b"", "an empty file"),
    (bytes(range(7, 200)), "unrecognised binary data"),
    (gzip.compress(b"x" * 100), "gzip-compressed"),
])
def test_garbage_pt_is_not_a_pytorch_checkpoint(tmp_path, content, looks):
    path = tmp_path / "model.pt"
    path.write_bytes(content)
    with pytest.raises(hts.ModelFileError, match="not a PyTorch checkpoint") as info:
        hts.open(path)
    assert looks in str(info.value)
    assert "weights_only=False" not in str(info.value) and "unsafe" not in str(info.value)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_truncated_and_garbage_checkpoints_never_suggest_weights_only_false(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"w.weight": torch.ones(64, 64)}, tmp_path / "ok.pt")
    blob = (tmp_path / "ok.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(hts.ModelFileError, match="not a PyTorch checkpoint.*truncated or damaged zip"):
        hts.open(tmp_path / "cut.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x80\x02garbage")
    with pytest.raises(hts.ModelFileError, match="never runs code") as info:
        hts.open(tmp_path / "junk.pt")
    assert "weights_only" not in str(info.value)
    (tmp_path / "junk4.pt").write_bytes(b"\x80\x04garbage")  # protocol 4: refused before torch is called
    with pytest.raises(hts.ModelFileError, match="protocol 4") as info:
        hts.open(tmp_path / "junk4.pt")
    assert "weights_only=False" not in str(info.value)


def test_json_and_zip_that_are_not_models(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(hts.ModelFileError, match="a JSON file, not model weights"):
        hts.open(tmp_path / "config.json")
    with zipfile.ZipFile(tmp_path / "docs.zip", "w") as z:
        z.writestr("a.txt", "hello")
    with pytest.raises(hts.ModelFileError, match="zip archive of 1 file.*a.txt"):
        hts.open(tmp_path / "docs.zip")


def test_safetensors_without_a_suffix_and_misnamed(tmp_path, caplog):
    w = np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32)
    writer.write(tmp_path / "weights", {"fc.weight": w})
    assert sniff(str(tmp_path / "weights")).name == "safetensors"
    np.testing.assert_array_equal(hts.open(tmp_path / "weights")[0].load(), w)
    (tmp_path / "weights").rename(tmp_path / "weights.pt")
    with caplog.at_level(logging.WARNING, logger="hts"):
        np.testing.assert_array_equal(hts.open(tmp_path / "weights.pt")[0].load(), w)
    assert "named like a PyTorch checkpoint but the content is a safetensors file" in caplog.text


def test_npy_named_bin(tmp_path):
    w = np.arange(12.0).reshape(3, 4)
    np.save(tmp_path / "w.npy", w)
    (tmp_path / "w.npy").rename(tmp_path / "w.bin")
    np.testing.assert_array_equal(hts.open(tmp_path / "w.bin")[0].load(), w)


@pytest.mark.parametrize("content, kind", [
    (b"\x89HDF\r\n\x1a\n" + b"\0" * 64, "hdf5"),
    (b"\x82\xa6params\x81\xa5dense\xc0\xa5other\xc0", "flax"),
    (b"\x08\x07\x12\x07pytorch\x1a\x032.1:\x00", "onnx"),
])
def test_other_formats_are_recognised(tmp_path, content, kind):
    path = tmp_path / "model.dat"
    path.write_bytes(content)
    assert sniff(str(path)).name == kind


def test_a_format_whose_reader_is_missing_says_so(tmp_path, monkeypatch):
    monkeypatch.setitem(sniff_module._READERS, "onnx", ("an ONNX model", "hts.adapters.no_such_reader:from_onnx"))
    path = tmp_path / "model"
    path.write_bytes(b"\x08\x07\x12\x07pytorch\x1a\x032.1:\x00")
    with pytest.raises(hts.ModelFileError, match=r"an ONNX model: this hts has no reader for it "
                                                 r"\(hts.adapters.no_such_reader is not installed"):
        hts.open(path)


def test_reader_paths_name_the_adapter_modules():
    assert model_kind("onnx").reader == "hts.adapters.onnx_file:from_onnx"
    assert model_kind("keras").reader == "hts.adapters.keras_file:from_keras"
    assert model_kind("flax").reader == "hts.adapters.flax_file:from_flax"
    assert model_kind("gguf").reader == "hts.adapters.gguf_file:from_gguf"


def test_cli_names_what_a_non_model_file_is(tmp_path, capsys):
    from hts.cli import main

    (tmp_path / "README.md").write_text("# notes\n")
    logger = logging.getLogger("hts")
    handlers, level = list(logger.handlers), logger.level
    try:
        assert main(["analyze", str(tmp_path / "README.md")]) == 1
    finally:  # main configures the hts logger for the command line: restore the library's state
        logger.handlers[:] = handlers
        logger.setLevel(level)
    err = capsys.readouterr().err
    assert "not a model file (looks like text)" in err and "Traceback" not in err
