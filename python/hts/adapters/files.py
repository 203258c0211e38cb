"""Open a model from a path: pick the reader by what the path is (folder, then content, then extension)."""

from __future__ import annotations

import logging
import os

from ..errors import ModelFileError
from .base import WeightTensor
from .folders import apply_config, from_folder, read_config
from .fused import split_fused
from .sniff import model_kind, reader_for, sniff

__all__ = ["open_path"]

TORCH_EXTENSIONS = (".pt", ".pth", ".bin", ".ckpt")

logger = logging.getLogger("hts")

#: The kind a file's name claims (see ``sniff``); the content decides, the name only breaks ties.
SUFFIX_KINDS = {".safetensors": "safetensors", ".npy": "npy", ".npz": "npz", ".gguf": "gguf",
                **{e: "torch" for e in TORCH_EXTENSIONS}, ".onnx": "onnx", ".keras": "keras", ".h5": "hdf5",
                ".hdf5": "hdf5", ".msgpack": "flax"}


def read_file(path: str) -> list[WeightTensor]:
    """The tensors of one file, by its content (``sniff``).

    A recognised model format is read by its reader, whatever the file is called (a warning names a
    misleading suffix). Content that is not recognised goes to the reader its suffix names, whose strict
    checks say what is wrong (a damaged safetensors header, ...), except a PyTorch suffix: unpickling garbage
    gives torch's misleading advice, so such a file is "not a PyTorch checkpoint (looks like text)". Without a
    telling suffix the error says what the file looks like ("not a model file (looks like text)").
    """
    lower = path.lower()
    if lower.endswith(".safetensors.index.json"):
        from .safetensors_model import from_safetensors_index

        return from_safetensors_index(path)
    if lower.endswith(".bin.index.json"):
        from .torch_checkpoint import from_torch_index

        return from_torch_index(path)
    kind = sniff(path)
    claimed = SUFFIX_KINDS.get(os.path.splitext(lower)[1], "")
    if kind.is_model:
        if claimed and claimed != kind.name and {claimed, kind.name} != {"keras", "hdf5"}:
            logger.warning("%s: named like %s but the content is %s; reading it as that", path,
                           model_kind(claimed).description, kind.description)
        return reader_for(kind, path)(path)
    if claimed == "torch":
        raise ModelFileError(path, f"not a PyTorch checkpoint ({kind.description})")
    if claimed:
        return reader_for(model_kind(claimed), path)(path)
    raise ModelFileError(path, f"not a model file ({kind.description})")


def open_path(path: str | os.PathLike, *, split: bool = False) -> tuple[list[WeightTensor], str, dict]:
    """(tensors, the file read, config) for a file or a model folder."""
    path = os.fspath(path)
    from .peft_adapter import find_adapter, from_peft

    if find_adapter(path) is not None:  # a PEFT adapter: LoRA updates, never loose factors
        return from_peft(path)
    if os.path.isdir(path):
        tensors, weights, config = from_folder(path, read_file)
    elif os.path.isfile(path):
        weights = path
        tensors = read_file(path)
        config = read_config(os.path.dirname(os.path.abspath(path)))
    elif os.path.lexists(path):
        raise ModelFileError(path, "not a regular file or folder (a broken or looping symlink?)")
    else:
        raise ModelFileError(path, "no such file or folder")
    tensors = apply_config(tensors, config)
    if split:
        tensors = split_fused(tensors, config)
    return tensors, weights, config
