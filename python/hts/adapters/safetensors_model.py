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
from .mapping import Entry, from_entries, weight_tensor
from .ordering import architecture_argsort, architecture_order
from .safetensors_file import SafetensorsFile, read_header

__all__ = ["from_safetensors", "from_safetensors_index", "read_index"]

logger = logging.getLogger("hts")

#: An index file larger than this is refused (real ones are tens of kB).
MAX_INDEX_BYTES = 64 * 2**20


def _entries(header: SafetensorsFile, names) -> list[Entry]:
    out = []
    for n in names:
        info = header.tensors[n]
        out.append(Entry(n, info.shape, info.dtype_name, header.loader(n), info.skip_reason))
    return out


def from_safetensors(path: str | os.PathLike) -> "FileTensors":
    header = read_header(path)
    if not header.tensors:
        raise ModelFileError(header.path, "holds no tensors")
    names = header.tensors.names()
    rows = architecture_argsort(names)
    if any(n.endswith(".weight") for n in names):  # from_entries's rule: then only the *.weight keys are layers
        rows = rows[np.fromiter((names[r].endswith(".weight") for r in rows), bool, len(rows))]
    return FileTensors(header, rows, "safetensors")


class FileTensors(LazyTensors):
    """The ``WeightTensor`` records of one safetensors file, by ``mapping.from_entries``'s rules, each made when
    it is asked for: only the header's columns and one row number per tensor are held, so a file of very many
    tiny tensors costs a few bytes per tensor, not a Python record each (docs/formats.md, "Limits")."""

    __slots__ = ("_header", "_rows", "_source")

    def __init__(self, header: SafetensorsFile, rows: np.ndarray, source: str) -> None:
        self._header, self._rows, self._source = header, rows, source

    def __len__(self) -> int:
        return len(self._rows)

    def _make(self, i: int) -> WeightTensor:
        row = int(self._rows[i])
        info = self._header.tensors.at(row)
        return weight_tensor(info.name, info.shape, info.dtype_name, self._header.loader(row), info.skip_reason,
                             layer_id=i + 1, source=self._source)

    def __repr__(self) -> str:
        return f"<{len(self)} tensors of {self._header.path}>"


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


def from_safetensors_index(index_path: str | os.PathLike) -> list[WeightTensor]:
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
    names = architecture_order(weight_map)
    entries = [e for n in names for e in _entries(headers[weight_map[n]], [n])]
    return from_entries(entries, source="safetensors-sharded")
