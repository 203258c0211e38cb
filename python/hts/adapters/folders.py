"""Model folders: Hugging Face style folders and hub-cache snapshots, read locally (never downloaded).

Which weights, in this order (the first that exists wins): ``model.safetensors.index.json`` (sharded), then
``model.safetensors``, then a single other ``*.safetensors.index.json`` or ``*.safetensors`` file, then
``pytorch_model.bin.index.json`` (sharded ``.bin``), ``pytorch_model.bin``, then a single ``*.pt``/``*.pth``/
``*.bin``/``*.npz``/``*.npy`` file, then a single ``*.gguf`` file, then a single ``*.msgpack`` file (Hugging Face's
``flax_model.msgpack``), then a Flax/Orbax param tree saved as a msgpack file named ``checkpoint``
(``flax.training.checkpoints``, Orbax's aggregate file; a TensorFlow ``checkpoint`` text file is not one). safetensors is preferred over ``.bin`` (no unpickling at all). Several
candidates of one kind without an index is an error naming them (which one is the model cannot be guessed).
A folder with none of these that is an Orbax checkpoint directory (``_METADATA`` / ``manifest.ocdbt``), a
CheckpointManager step (``<step>/default``, ``<step>/<item>``) or root (its newest step) is read by
``orbax_checkpoint``, as is a folder whose msgpack ``checkpoint`` sits next to Orbax's zarr arrays (older
Orbax: the msgpack tree then holds placeholders for the arrays).

A hub cache folder (``models--org--name``) resolves through ``refs/main`` (or its only snapshot) to
``snapshots/<revision>/``. Only the folder's own entries are looked at (no recursion, so symlink loops cannot
trap it); broken links are ignored.

``config.json`` (when present) gives ``tie_word_embeddings`` (transformers' default: true): a stored
``lm_head.weight`` tied to the input embedding is listed as skipped ("tied ... counted once"), and
``model_type``/head counts for ``split_fused``.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import replace

from ..errors import ModelFileError
from .base import WeightTensor

__all__ = ["apply_config", "from_folder", "read_config", "resolve_hub_cache"]

logger = logging.getLogger("hts")

_INPUT_EMBEDDING = re.compile(r"(^|\.)(embed_tokens|wte|word_embeddings|embed_in|tok_embeddings|shared)\.weight$")
_OUTPUT_EMBEDDING = re.compile(r"(^|\.)(lm_head|embed_out)\.weight$")


def resolve_hub_cache(folder: str) -> str:
    """The snapshot folder of a hub-cache model folder; any other folder unchanged."""
    snapshots = os.path.join(folder, "snapshots")
    if not os.path.isdir(snapshots):
        return folder
    ref = os.path.join(folder, "refs", "main")
    if os.path.isfile(ref):
        with open(ref, encoding="utf-8") as f:
            revision = f.read(200).strip()
        candidate = os.path.join(snapshots, revision)
        if revision and os.path.basename(revision) == revision and os.path.isdir(candidate):
            return candidate
    revisions = sorted(e.name for e in os.scandir(snapshots) if e.is_dir())
    if len(revisions) == 1:
        return os.path.join(snapshots, revisions[0])
    raise ModelFileError(folder, f"hub cache folder with {len(revisions)} snapshots and no usable refs/main: "
                                 "pass the snapshot folder itself")


def read_config(folder: str) -> dict:
    path = os.path.join(folder, "config.json")
    if not os.path.isfile(path):
        return {}
    return read_json_object(path)


def read_json_object(path: str) -> dict:
    """A small JSON config file (at most 16 MiB read) that must hold an object; ModelFileError otherwise."""
    name = os.path.basename(path)
    try:
        with open(path, "rb") as f:
            config = json.loads(f.read(16 * 2**20).decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
        raise ModelFileError(path, f"{name} is not valid JSON: {str(err)[:200]}") from None
    if not isinstance(config, dict):
        raise ModelFileError(path, f"{name} is not a JSON object")
    return config


def _files(folder: str) -> list[str]:
    out = []
    try:
        with os.scandir(folder) as it:
            for e in it:
                try:
                    if e.is_file():  # follows links; False for broken links and loops
                        out.append(e.name)
                except OSError:
                    continue
    except OSError as err:
        raise ModelFileError(folder, f"cannot list the folder: {err.strerror or err}") from err
    return sorted(out)


def weights_file(folder: str) -> str:
    """The file to read the model's weights from (see the module docstring)."""
    names = _files(folder)
    for wanted in ("model.safetensors.index.json", "model.safetensors"):
        if wanted in names:
            return os.path.join(folder, wanted)
    for pattern in (r".*\.safetensors\.index\.json", r".*\.safetensors", r"pytorch_model\.bin\.index\.json",
                    r"pytorch_model\.bin", r".*\.(pt|pth|bin)", r".*\.npz", r".*\.npy", r".*\.gguf",
                    r".*\.msgpack"):
        found = [n for n in names if re.fullmatch(pattern, n)]
        if pattern == r".*\.safetensors" and found and not any(n.endswith(".index.json") for n in names) \
                and len(found) > 1:
            raise ModelFileError(folder, f"{len(found)} safetensors files and no index: "
                                         f"{', '.join(found[:5])}{'...' if len(found) > 5 else ''}; pass one file")
        if len(found) == 1:
            return os.path.join(folder, found[0])
        if len(found) > 1:
            raise ModelFileError(folder, f"several candidate weight files ({', '.join(found[:5])}); pass one file")
    if "checkpoint" in names:  # flax.training / Orbax: a msgpack param tree named "checkpoint" (TF's is text)
        from .sniff import sniff

        path = os.path.join(folder, "checkpoint")
        if sniff(path).name == "flax":
            return path
    raise ModelFileError(folder, "no model weights found (looked for *.safetensors, *.safetensors.index.json, "
                                 "pytorch_model.bin(.index.json), *.pt, *.pth, *.bin, *.npz, *.npy, *.gguf, "
                                 "*.msgpack, a Flax/Orbax msgpack 'checkpoint', an Orbax checkpoint "
                                 "directory)")


def from_folder(folder: str, open_file) -> tuple[list[WeightTensor], str, dict]:
    """(tensors, the weights file read, config) of a model folder; ``open_file(path)`` reads one file."""
    folder = resolve_hub_cache(folder)
    config = read_config(folder)
    from .orbax_checkpoint import is_orbax_checkpoint, read_orbax

    try:
        path = weights_file(folder)
    except ModelFileError as err:
        if "no model weights found" not in str(err) or not is_orbax_checkpoint(folder):
            raise
        tensors, path = read_orbax(folder)
        return tensors, path, config
    if os.path.basename(path) == "checkpoint" and is_orbax_checkpoint(folder):
        # older Orbax: the msgpack 'checkpoint' holds the tree with placeholders, the arrays are zarr/OCDBT
        tensors, path = read_orbax(folder)
        return tensors, path, config
    return open_file(path), path, config


def apply_config(tensors: list[WeightTensor], config: dict) -> list[WeightTensor]:
    """Count a tied output embedding once (see the module docstring)."""
    if not config or not config.get("tie_word_embeddings", True):
        return tensors
    inputs = [t for t in tensors if _INPUT_EMBEDDING.search(t.key) and not t.skip_reason]
    if not inputs:
        return tensors
    out = []
    for t in tensors:
        if _OUTPUT_EMBEDDING.search(t.key) and not t.skip_reason and t.shape == inputs[0].shape:
            t = replace(t, skip_reason=f"tied to {inputs[0].key} by config.json tie_word_embeddings "
                                       "(counted once)")
            logger.info("%s: %s", t.key, t.skip_reason)
        out.append(t)
    return out
