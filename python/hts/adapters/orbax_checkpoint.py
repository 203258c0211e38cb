"""Orbax checkpoint directories (``orbax-checkpoint``'s StandardCheckpointer / PyTreeCheckpointer /
CheckpointManager), read with hts's own OCDBT and zarr parsers (``ocdbt``, ``zarr_array``); zstd needs the
``orbax`` extra (``zstandard``). Never imports orbax, tensorstore or jax.

Layout: a checkpoint directory holds ``_METADATA`` (JSON: the tree's key paths and value types) and either an
OCDBT database (``manifest.ocdbt`` + ``d/`` + ``ocdbt.process_N/``, the default) whose keys are
``<param name>/.zarray`` or ``<param name>/zarr.json`` and the chunk keys, or (``use_ocdbt=False``) one zarr
directory per array, named by the param name. The param name is the key path joined with dots, which is also
the tensor's ``key``; names, layer types and orientations follow ``flax_names`` (nnx ``value`` wrappers
dropped; optimizer state listed with a skip reason). Without ``_METADATA`` (older Orbax) the arrays are found
from the zarr metadata keys. A CheckpointManager root (``<root>/<step>/<item>/``) resolves to its newest step
(a warning says which) and there to the item ``default``, or to the only item holding a checkpoint.

Listing reads metadata only and holds the names (records are made on use: ``lazy.LazyTensors``); ``load``
reads one tensor chunk by chunk into one preallocated array.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence

import numpy as np

from ..errors import ModelFileError
from . import limits
from .base import WeightTensor
from .dtypes import bf16_to_float32
from .flax_names import classify, strip_wrappers
from .lazy import LazyTensors
from .ocdbt import OcdbtStore, is_ocdbt
from .zarr_array import ZarrArray, parse_metadata, read_array

__all__ = ["from_orbax", "from_orbax_manifest", "is_orbax_checkpoint", "read_orbax", "resolve_checkpoint"]

logger = logging.getLogger("hts")

METADATA = "_METADATA"
_ZARR_FILES = (".zarray", "zarr.json")
_MAX_METADATA_BYTES = 64 * 2**20
_MAX_ZARR_JSON = 2**20


def _is_checkpoint_dir(folder: str) -> bool:
    """``_METADATA``, an OCDBT manifest, or (older Orbax, ``use_ocdbt=False``) zarr array folders."""
    return (os.path.isfile(os.path.join(folder, METADATA)) or is_ocdbt(folder)
            or any(os.path.isfile(os.path.join(folder, s, z)) for s in _subdirs(folder) for z in _ZARR_FILES))


def _subdirs(folder: str) -> list[str]:
    try:
        with os.scandir(folder) as it:
            return sorted(e.name for e in it if e.is_dir(follow_symlinks=False))
    except OSError:
        return []


def is_orbax_checkpoint(folder: str) -> bool:
    """Whether ``folder`` is an Orbax checkpoint, a CheckpointManager step or a CheckpointManager root."""
    if _is_checkpoint_dir(folder):
        return True
    subs = _subdirs(folder)
    if any(_is_checkpoint_dir(os.path.join(folder, s)) for s in subs):
        return True
    steps = [s for s in subs if _step(s) is not None]
    return bool(steps) and any(_is_checkpoint_dir(os.path.join(folder, max(steps, key=_step), s))
                               for s in _subdirs(os.path.join(folder, max(steps, key=_step))))


def _step(name: str) -> int | None:
    m = re.fullmatch(r"(?:[A-Za-z_]+_)?(\d{1,18})", name)
    return int(m.group(1)) if m else None


def resolve_checkpoint(folder: str) -> str:
    """The checkpoint directory to read for ``folder`` (see the module docstring)."""
    if _is_checkpoint_dir(folder):
        return folder
    subs = _subdirs(folder)
    items = [s for s in subs if _is_checkpoint_dir(os.path.join(folder, s))]
    if items:
        if "default" in items:
            return os.path.join(folder, "default")
        if len(items) == 1:
            return os.path.join(folder, items[0])
        raise ModelFileError(folder, f"a checkpoint step with {len(items)} items ({', '.join(items[:5])}): "
                                     "pass the item's folder")
    steps = sorted((s for s in subs if _step(s) is not None), key=_step)
    if steps:
        newest = os.path.join(folder, steps[-1])
        logger.warning("%s: a CheckpointManager folder with %d step(s) (%s); reading the newest, %s", folder,
                       len(steps), ", ".join(steps[:3]) + (" ..." if len(steps) > 3 else ""), newest)
        return resolve_checkpoint(newest) if _step_has_items(newest) else newest
    raise ModelFileError(folder, "not an Orbax checkpoint (no _METADATA, manifest.ocdbt or zarr arrays, no "
                                 "checkpoint items, no numbered steps)")


def _step_has_items(folder: str) -> bool:
    return any(_is_checkpoint_dir(os.path.join(folder, s)) for s in _subdirs(folder))


class _FolderStore:
    """Keys as files under a checkpoint folder (``use_ocdbt=False``), kept inside it."""

    def __init__(self, folder: str) -> None:
        self.folder = os.path.abspath(folder)
        self._real = os.path.realpath(self.folder)

    def _path(self, key: str) -> str | None:
        parts = key.split("/")
        if any(p in ("", ".", "..") or "\x00" in p or "\\" in p for p in parts):
            raise ModelFileError(self.folder, f"key {key[:200]!r} is not a plain relative path (refused)")
        path = os.path.join(self.folder, *parts)
        if not os.path.isfile(path):
            return None
        real = os.path.realpath(path)
        if os.path.commonpath([real, self._real]) != self._real:
            raise ModelFileError(path, "resolves outside the checkpoint directory (a symlink?); refused")
        return path

    def size(self, key: str) -> int | None:
        path = self._path(key)
        return None if path is None else os.path.getsize(path)

    def read(self, key: str, start: int, length: int, tensor: str | None = None) -> bytes:
        path = self._path(key)
        if path is None:
            raise ModelFileError(os.path.join(self.folder, key), "missing", tensor=tensor)
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if start < 0 or length < 0 or start + length > size:
                raise ModelFileError(path, f"bytes {start}..{start + length} of a {size}-byte file requested "
                                           "(truncated?)", tensor=tensor)
            f.seek(start)
            return f.read(length)

    def chunk_keys(self, name: str, limit: int) -> list[str]:
        """Keys of the files under the array folder ``name`` (at most ``limit``; its metadata excluded)."""
        root = os.path.join(self.folder, name)
        out = []
        for here, dirs, files in os.walk(root):  # no symlinks followed
            rel = os.path.relpath(here, root)
            for f in files:
                key = f if rel == "." else f"{rel.replace(os.sep, '/')}/{f}"
                if key not in _ZARR_FILES + (".zattrs",):
                    out.append(key)
            if len(out) > limit:
                break
        return out

    def keys(self) -> list[str]:
        out = []
        for name in _subdirs(self.folder):
            for z in _ZARR_FILES:
                if os.path.isfile(os.path.join(self.folder, name, z)):
                    out.append(f"{name}/{z}")
        return out


class _OcdbtKeys:
    def __init__(self, folder: str) -> None:
        self.db = OcdbtStore(folder)
        self.folder = folder

    def size(self, key: str) -> int | None:
        ref = self.db.entries.get(key.encode("utf-8"))
        return None if ref is None else ref.length

    def read(self, key: str, start: int, length: int, tensor: str | None = None) -> bytes:
        ref = self.db.entries.get(key.encode("utf-8"))
        if ref is None:
            raise ModelFileError(self.folder, f"key {key!r} is missing", tensor=tensor)
        return self.db.read(ref, start, length, tensor=tensor)

    def chunk_keys(self, name: str, limit: int) -> list[str]:
        """Keys under ``name/`` (at most ``limit`` + 1; its metadata excluded), by bisection of the sorted keys."""
        prefix = name.encode("utf-8") + b"/"
        out = []
        for k in self.db.entries.keys_from(prefix):
            if len(out) > limit:
                break
            tail = k[len(prefix):].decode("utf-8", "replace")
            if tail not in _ZARR_FILES + (".zattrs",):
                out.append(tail)
        return out

    def keys(self) -> list[str]:
        return [k.decode("utf-8", "replace") for k in self.db.entries
                if k.endswith(b"/.zarray") or k.endswith(b"/zarr.json")]


def _tree_names(folder: str) -> list[str] | None:
    """Param names of the array leaves in ``_METADATA``, in its order; None without the file.

    The JSON is walked member by member (``_object_members``) and each ``tree_metadata`` entry parsed alone and
    dropped, so only the text and the names are held: ``json.loads`` would hold a dict, a list and three dicts
    per array (~1.7 kB, ~7 times what an entry takes in the file; docs/formats.md, "Limits")."""
    path = os.path.join(folder, METADATA)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > _MAX_METADATA_BYTES:
                raise ModelFileError(path, f"larger than {_MAX_METADATA_BYTES} bytes (refused)")
            raw = f.read(size)
        text = raw.decode("utf-8")
        del raw
        decoder = json.JSONDecoder()
        found: list = []  # [names] per tree_metadata member (the last one counts, as for json.loads)

        def top(key: str, i: int) -> int:
            if key != "tree_metadata":
                return decoder.raw_decode(text, i)[1]
            names: list = []
            found.append(names)
            if text[i:i + 1] != "{":
                found[-1] = None
                return decoder.raw_decode(text, i)[1]

            def entry(_: str, j: int) -> int:
                value, end = decoder.raw_decode(text, j)
                name = _entry_name(value, path)
                if name is not None:
                    names.append(name)
                    if len(names) > limits.MAX_TENSORS:
                        raise ModelFileError(path, f"more than the {limits.MAX_TENSORS} arrays a checkpoint may "
                                                   "hold")
                return end

            return _object_members(text, i, entry)

        i = _WS(text, 0).end()
        if text[i:i + 1] != "{":
            decoder.decode(text)  # not an object: the ValueError that says what is wrong
            found.append(None)
        else:
            i = _object_members(text, i, top)
            if _WS(text, i).end() != len(text):
                raise json.JSONDecodeError("Extra data", text, i)
    except OSError as err:
        raise ModelFileError(path, f"cannot read: {err.strerror or err}") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise ModelFileError(path, f"not valid JSON: {str(err)[:120]}") from None
    if not found or found[-1] is None:
        raise ModelFileError(path, "has no 'tree_metadata' object")
    names = found[-1]
    return names if len(set(names)) == len(names) else list(dict.fromkeys(names))


def _entry_name(entry, path: str) -> str | None:
    """The param name of one ``tree_metadata`` entry; None for a leaf that is no array."""
    if not isinstance(entry, dict) or not isinstance(entry.get("key_metadata"), list):
        raise ModelFileError(path, "a tree_metadata entry has no 'key_metadata' list")
    value = entry.get("value_metadata") or {}
    kind = value.get("value_type", "") if isinstance(value, dict) else ""
    if kind not in ("jax.Array", "np.ndarray"):
        return None  # scalars, strings, None: never layers
    parts = [k.get("key") if isinstance(k, dict) else None for k in entry["key_metadata"]]
    if not parts or not all(isinstance(p, (str, int)) and not isinstance(p, bool) for p in parts):
        raise ModelFileError(path, f"a key path {str(parts)[:80]} is not a list of names")
    return ".".join(map(str, parts))


_WS = re.compile(r"[ \t\n\r]*").match  # JSON's whitespace


def _object_members(text: str, i: int, member) -> int:
    """Walk the JSON object starting at ``text[i]`` (``{``): ``member(key, start of its value)`` parses each
    value and returns where it ends. Returns the index past the closing ``}``; bad syntax raises ``ValueError``
    (``json.JSONDecodeError``), as ``json.loads`` would."""
    i = _WS(text, i + 1).end()
    if text[i:i + 1] == "}":
        return i + 1
    while True:
        if text[i:i + 1] != '"':
            raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, i)
        key, i = json.decoder.scanstring(text, i + 1, True)
        i = _WS(text, i).end()
        if text[i:i + 1] != ":":
            raise json.JSONDecodeError("Expecting ':' delimiter", text, i)
        i = _WS(text, member(key, _WS(text, i + 1).end())).end()
        delimiter = text[i:i + 1]
        if delimiter == "}":
            return i + 1
        if delimiter != ",":
            raise json.JSONDecodeError("Expecting ',' delimiter", text, i)
        i = _WS(text, i + 1).end()


def from_orbax(path: str | os.PathLike) -> Sequence[WeightTensor]:
    """The weight tensors of an Orbax checkpoint directory (see the module docstring)."""
    return read_orbax(path)[0]


def from_orbax_manifest(path: str | os.PathLike) -> Sequence[WeightTensor]:
    """The weight tensors of the Orbax checkpoint whose ``manifest.ocdbt`` is ``path``."""
    return read_orbax(os.path.dirname(os.path.abspath(os.fspath(path))))[0]


def read_orbax(path: str | os.PathLike) -> tuple[Sequence[WeightTensor], str]:
    """(tensors, the checkpoint directory read) for a checkpoint, step or CheckpointManager folder."""
    folder = resolve_checkpoint(os.fspath(path))
    store = _OcdbtKeys(folder) if is_ocdbt(folder) else _FolderStore(folder)
    names = _tree_names(folder)
    if names is None:
        names = sorted({k.rsplit("/", 1)[0] for k in store.keys()})
    if len(names) > limits.MAX_TENSORS:
        raise ModelFileError(folder, f"more than the {limits.MAX_TENSORS} arrays a checkpoint may hold")
    kept = [name for name in names if len(_array(store, folder, name)[0].shape) >= 2]
    del names
    if not kept:
        raise ModelFileError(folder, "the checkpoint holds no arrays of two or more dimensions")
    return _OrbaxTensors(store, folder, kept), folder


class _OrbaxTensors(LazyTensors):
    """The arrays of two or more dimensions of a checkpoint, as names; each record is made on use from the
    array's zarr metadata, read again (~0.1 ms), so listing holds ~0.1 kB per array, not a record with its
    parsed metadata (~2.8 kB; docs/formats.md, "Limits")."""

    __slots__ = ("_store", "_folder", "_names")

    def __init__(self, store, folder: str, names: list) -> None:
        self._store, self._folder, self._names = store, folder, names

    def __len__(self) -> int:
        return len(self._names)

    def _make(self, i: int) -> WeightTensor:
        name = self._names[i]
        arr, where = _array(self._store, self._folder, name)
        return _record(i + 1, self._store, self._folder, where, name, arr)


def _array(store, folder: str, name: str) -> tuple[ZarrArray, str]:
    for z in _ZARR_FILES:
        n = store.size(f"{name}/{z}")
        if n is not None:
            where = os.path.join(folder, name, z)
            if n > _MAX_ZARR_JSON:
                raise ModelFileError(where, f"zarr metadata of {n} bytes (refused)", tensor=name)
            return parse_metadata(store.read(f"{name}/{z}", 0, n, name), where, name), where
    raise ModelFileError(folder, "listed in _METADATA but there is no zarr array (.zarray or zarr.json) for it",
                         tensor=name)


def _record(layer_id: int, store, folder: str, where: str, name: str, arr: ZarrArray) -> WeightTensor:
    key = strip_wrappers(name)
    is_float = arr.storage.kind == "f" or arr.dtype == "bfloat16"
    info = classify(key, arr.shape, arr.dtype, is_float)
    prefix = f"{name}/"

    def load() -> np.ndarray:
        if info.skip_reason:
            raise ModelFileError(folder, info.skip_reason, tensor=key)
        grid = 1
        for s, c in zip(arr.shape, arr.chunks):
            grid *= -(-s // c)
        present = {}
        for k in store.chunk_keys(name, grid):
            index = arr.chunk_index(k)
            if index is None:
                raise ModelFileError(where, f"chunk key {k[:80]!r} names no chunk of shape {arr.shape} in chunks "
                                            f"{arr.chunks} (out of range or malformed; refused)", tensor=key)
            present[index] = k
        w = read_array(arr, present, lambda k: store.size(prefix + k),
                       lambda k, s, n: store.read(prefix + k, s, n, key), where, key)
        if arr.dtype == "bfloat16":
            w = bf16_to_float32(w)
        return info.transform(w) if info.transform else w

    return WeightTensor(layer_id=layer_id, name=info.name, longname=info.longname, key=key,
                        layer_type=info.layer_type, shape=info.shape, dtype=arr.dtype,
                        orientation=info.orientation, load=load, skip_reason=info.skip_reason, source="orbax",
                        storage=arr.codec)
