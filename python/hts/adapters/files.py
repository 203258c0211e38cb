"""Open a model from a path: pick the reader by what the path is (folder, extension, then magic bytes)."""

from __future__ import annotations

import os

from ..errors import ModelFileError
from .base import WeightTensor
from .folders import apply_config, from_folder, read_config
from .fused import split_fused

__all__ = ["open_path"]

TORCH_EXTENSIONS = (".pt", ".pth", ".bin", ".ckpt")


def _sniff(path: str) -> str:
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as err:
        raise ModelFileError(path, f"cannot read: {err.strerror or err}") from err
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"PK"):
        import zipfile

        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError):
            return "torch"
        return "npz" if names and all(n.endswith(".npy") for n in names) else "torch"
    if head[:1] == b"\x80":  # a pickle protocol marker: a legacy torch.save file
        return "torch"
    return "safetensors"


def read_file(path: str) -> list[WeightTensor]:
    """The tensors of one file, by its kind."""
    lower = path.lower()
    if lower.endswith(".safetensors.index.json"):
        from .safetensors_model import from_safetensors_index

        return from_safetensors_index(path)
    if lower.endswith(".bin.index.json"):
        from .torch_checkpoint import from_torch_index

        return from_torch_index(path)
    kind = ("safetensors" if lower.endswith(".safetensors") else "npy" if lower.endswith(".npy")
            else "npz" if lower.endswith(".npz") else "torch" if lower.endswith(TORCH_EXTENSIONS) else _sniff(path))
    if kind == "safetensors":
        from .safetensors_model import from_safetensors

        return from_safetensors(path)
    if kind == "npy":
        from .numpy_files import from_npy

        return from_npy(path)
    if kind == "npz":
        from .numpy_files import from_npz

        return from_npz(path)
    from .torch_checkpoint import from_torch_checkpoint

    return from_torch_checkpoint(path)


def open_path(path: str | os.PathLike, *, split: bool = False) -> tuple[list[WeightTensor], str, dict]:
    """(tensors, the file read, config) for a file or a model folder."""
    path = os.fspath(path)
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
