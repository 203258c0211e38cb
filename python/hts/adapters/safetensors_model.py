"""Models stored as safetensors: one file, or shards listed by a ``*.safetensors.index.json``.

The index's ``weight_map`` (tensor name -> shard file) is trusted, not a glob of the folder: every listed
tensor must be in its shard (else ``ModelFileError`` naming both), shard names must be plain file names in the
index's folder (no path components: an index cannot point outside its folder), and tensors a shard holds but
the index does not list are ignored with a warning. safetensors keeps no module order, so tensors come in
forward-pass order recovered from their names (``ordering``: embeddings, blocks by index with attention before
MLP, final norm, heads) and follow the state_dict rules of ``mapping`` (types from the number of dimensions).
"""

from __future__ import annotations

import json
import logging
import os

import numpy as np

from ..errors import ModelFileError
from .base import WeightTensor
from .lazy import LazyTensors
from .mapping import weight_tensor
from .ordering import architecture_argsort
from .safetensors_file import read_header

__all__ = ["from_safetensors", "from_safetensors_index", "read_index"]

logger = logging.getLogger("hts")

#: An index file larger than this is refused (real ones are tens of kB).
MAX_INDEX_BYTES = 64 * 2**20


def from_safetensors(path: str | os.PathLike) -> "FileTensors":
    header = read_header(path)
    if not header.tensors:
        raise ModelFileError(header.path, "holds no tensors")
    names = header.tensors.names()
    rows = _layers(names, architecture_argsort(names))
    return FileTensors([header], None, rows, "safetensors")


def _layers(names, order: np.ndarray) -> np.ndarray:
    """``order`` (positions in ``names``) less the names that are not layers by ``from_entries``'s rule: when
    any name ends with ``.weight``, only those are."""
    if not any(n.endswith(".weight") for n in names):
        return order
    return order[np.fromiter((names[r].endswith(".weight") for r in order), bool, len(order))]


class FileTensors(LazyTensors):
    """The ``WeightTensor`` records of a safetensors model (one file, or the shards of an index), by
    ``mapping.from_entries``'s rules, each made when it is asked for: only the headers' columns, one row number
    per tensor and, for shards, one shard number are held, so a file of very many tiny tensors costs a few bytes
    per tensor, not a Python record each (docs/formats.md, "Limits")."""

    __slots__ = ("_headers", "_shards", "_rows", "_source")

    def __init__(self, headers: list, shards: np.ndarray | None, rows: np.ndarray, source: str) -> None:
        self._headers, self._shards, self._rows, self._source = headers, shards, rows, source

    def __len__(self) -> int:
        return len(self._rows)

    def _make(self, i: int) -> WeightTensor:
        header = self._headers[0 if self._shards is None else int(self._shards[i])]
        row = int(self._rows[i])
        info = header.tensors.at(row)
        return weight_tensor(info.name, info.shape, info.dtype_name, header.loader(row), info.skip_reason,
                             layer_id=i + 1, source=self._source)

    def __repr__(self) -> str:
        return f"<{len(self)} tensors of {self._headers[0].path}{' and other shards' * (len(self._headers) > 1)}>"


def read_index(path: str) -> dict:
    """``weight_map`` of an index file, checked: tensor name -> shard path (inside the index's folder)."""
    try:
        if os.path.getsize(path) > MAX_INDEX_BYTES:
            raise ModelFileError(path, f"index larger than {MAX_INDEX_BYTES} bytes")
        with open(path, "rb") as f:
            index = json.loads(f.read().decode("utf-8"))
    except OSError as err:
        raise ModelFileError(path, f"cannot read: {err.strerror or err}") from err
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise ModelFileError(path, f"index is not valid JSON: {str(err)[:200]}") from None
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise ModelFileError(path, "index has no 'weight_map' object")
    folder = os.path.dirname(os.path.abspath(path))
    out = {}
    for name, shard in weight_map.items():
        if not isinstance(shard, str) or not shard or os.path.basename(shard) != shard or shard in (".", ".."):
            raise ModelFileError(path, f"weight_map entry {shard!r} is not a file name in the index's folder",
                                 tensor=name)
        out[name] = os.path.join(folder, shard)
    return out


def from_safetensors_index(index_path: str | os.PathLike) -> FileTensors:
    index_path = os.fspath(index_path)
    weight_map = read_index(index_path)
    by_shard: dict[str, list[str]] = {}
    for name, shard in weight_map.items():
        by_shard.setdefault(shard, []).append(name)
    headers = {}
    for shard, names in by_shard.items():
        if not os.path.isfile(shard):
            raise ModelFileError(index_path, f"shard {os.path.basename(shard)!r} listed in the index is missing",
                                 tensor=names[0])
        header = headers[shard] = read_header(shard)
        missing = [n for n in names if n not in header.tensors]
        if missing:
            raise ModelFileError(shard, f"{len(missing)} tensor(s) the index assigns to this shard are not in it "
                                        f"(first: {missing[0]!r})")
        extra = set(header.tensors) - set(names)
        if extra:
            logger.warning("%s: %d tensor(s) not listed in the index are ignored (first: %r)", shard, len(extra),
                           sorted(extra)[0])
    shard_number = {shard: k for k, shard in enumerate(headers)}
    names = list(weight_map)
    order = _layers(names, architecture_argsort(names))
    shards = np.fromiter((shard_number[weight_map[names[r]]] for r in order), np.int32, len(order))
    rows = np.fromiter((headers[weight_map[names[r]]].tensors.row(names[r]) for r in order), np.int32, len(order))
    return FileTensors(list(headers.values()), shards, rows, "safetensors-sharded")
