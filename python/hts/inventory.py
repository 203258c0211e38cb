"""``hts.open``: what a model holds — tensor names, layer types, shapes, dtypes, sizes — without any maths."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Iterator

import numpy as np

from .adapters import WeightTensor

__all__ = ["Inventory", "open_model"]

_ITEMSIZE = {"bfloat16": 2, "float8_e4m3": 1, "float8_e5m2": 1, "float8_e8m0": 1, "bool": 1}


def _itemsize(dtype: str) -> int:
    if dtype in _ITEMSIZE:
        return _ITEMSIZE[dtype]
    try:
        return np.dtype(dtype).itemsize
    except TypeError:
        return 0


def _stored_bytes(t: WeightTensor) -> int:
    return t.stored_bytes if t.stored_bytes >= 0 else t.size * _itemsize(t.dtype)


class Inventory:
    """The weight tensors of a model, in model order, loaded only when analysed.

    Attributes
    ----------
    tensors : sequence of WeightTensor
    path : str or None
        The file or folder opened (None for an in-memory model).
    weights_file : str or None
        The file the weights are read from (for a folder: the chosen index or file).
    config : dict
        The folder's ``config.json`` when there is one.
    """

    def __init__(self, tensors: list[WeightTensor], *, path: str | None = None, weights_file: str | None = None,
                 config: dict | None = None) -> None:
        # a reader's lazy sequence (safetensors: ``FileTensors``) stays one: a record is made when it is used
        self.tensors = tensors if isinstance(tensors, Sequence) else list(tensors)
        self.path = path
        self.weights_file = weights_file
        self.config = dict(config or {})

    def __len__(self) -> int:
        return len(self.tensors)

    def __iter__(self) -> Iterator[WeightTensor]:
        return iter(self.tensors)

    def __getitem__(self, i: int) -> WeightTensor:
        return self.tensors[i]

    @property
    def nbytes(self) -> int:
        """Bytes the tensors take as stored."""
        return sum(_stored_bytes(t) for t in self.tensors)

    def rows(self, **options) -> list[dict]:
        """``list(iter_rows(**options))``: one dict per tensor (see ``iter_rows``)."""
        return list(self.iter_rows(**options))

    def iter_rows(self, *, pool: bool = True, conv_method: str = "slices", conv_input_size: int | tuple | None = None,
                  min_evals: int = 8, max_evals: int = 15000, max_N: int = 50000,
                  start_ids: int = 0) -> Iterator[dict]:
        """One dict per tensor, made one at a time (a flood of 200,000 tensors is listed without holding them):
        layer_id, key, longname, layer_type, shape, dtype, quant (the storage type of a format that quantises: GGUF's "F16", "Q4_K", ...; "" for other formats), elements, bytes (as stored),
        the matrix dimensions ``hts.analyze`` would use with these options (N ≥ M, rf slices, num_evals = M·rf;
        None for a tensor that is not a matrix), ``analysed`` (whether ``hts.analyze`` with the same options
        analyses it: the tensor's own skip reason *and* the size gates min_evals ≤ num_evals ≤ max_evals,
        N ≤ max_N) and ``reason`` (why not); for a PEFT LoRA update also lora_rank and lora_scale (its bytes
        are those of the two factors; its shape and elements those of ΔW); for a format that chunks and
        compresses, ``storage`` (Orbax: the zarr codecs and chunk shape). The keyword options and their defaults
        are ``hts.analyze``'s (``start_ids`` renumbers the layer ids as there)."""
        from .matrices import plan_layer, skip_reason
        from .selection import renumber

        size = conv_input_size
        if isinstance(size, int):
            size = (size, size)
        if isinstance(start_ids, bool) or not isinstance(start_ids, int) or start_ids < 0:
            raise ValueError(f"start_ids must be an int >= 0, got {start_ids!r}")
        return self._rows(renumber(self.tensors, start_ids), plan_layer, skip_reason, size, pool=pool,
                          conv_method=conv_method, min_evals=min_evals, max_evals=max_evals, max_N=max_N)

    @staticmethod
    def _rows(tensors, plan_layer, skip_reason, size, *, pool, conv_method, min_evals, max_evals, max_N):
        for t in tensors:
            reason, plan = t.skip_reason, None
            if not reason:
                plan = plan_layer(t, pool=pool, conv_method=conv_method, conv_input_size=size, normalize=False)
                reason = skip_reason(plan, pool=pool, min_evals=min_evals, max_evals=max_evals, max_N=max_N)
            yield dict(layer_id=t.layer_id, key=t.key, longname=t.longname, layer_type=t.layer_type,
                       shape="x".join(map(str, t.shape)), dtype=t.dtype, quant=t.quant, elements=t.size,
                       bytes=_stored_bytes(t), N=plan.N if plan else None,
                       M=plan.M if plan else None, rf=plan.rf if plan else None,
                       num_evals=plan.num_evals if plan else None, analysed=not reason, reason=reason,
                       **({"lora_rank": t.lora.rank, "lora_scale": t.lora.scale} if t.lora is not None
                          else {}), **({"storage": t.storage} if t.storage else {}))

    def table(self, **options):
        """``rows(**options)`` as a pandas DataFrame."""
        from ._frames import table

        rows = self.rows(**options)
        return table(rows, _table_columns({k for r in rows for k in r}))

    def table_frames(self, *, chunk: int | None = None, scan=None, **options):
        """``table(**options)`` as consecutive DataFrames of at most ``chunk`` rows (``hts._frames.CHUNK_ROWS``)
        with the whole table's columns and column types, from ``iter_rows`` (read twice when there are more
        rows than a chunk): what ``hts describe`` writes a long listing from. One frame, ``table`` itself, when
        the rows fit in one chunk. ``scan``: the ``hts._frames.Scan`` of ``iter_rows(**options)`` when known."""
        from ._frames import CHUNK_ROWS, Scan, frames

        chunk = chunk or CHUNK_ROWS
        if len(self) <= chunk:
            yield self.table(**options)
            return
        scan = scan or Scan(self.iter_rows(**options))
        columns = _table_columns(scan.seen)
        yield from frames(self.iter_rows(**options), columns, scan.types(columns), chunk=chunk)

    def to_dict(self, **options) -> dict:
        """Path, weights file and ``rows(**options)``."""
        return {"path": self.path, "weights_file": self.weights_file, "tensors": self.rows(**options)}

    def json_parts(self, indent: int | None = None, **options) -> Iterator[str]:
        """``json.dumps(to_dict(**options), indent=indent)`` in parts, one tensor after another."""
        from ._json import json_parts

        return json_parts({"path": self.path, "weights_file": self.weights_file}, "tensors",
                          self.iter_rows(**options), indent=indent)

    def __repr__(self) -> str:
        skipped = sum(not r["analysed"] for r in self.iter_rows())
        where = f" {self.path}" if self.path else ""
        return (f"<hts.Inventory{where}: {len(self)} tensors ({len(self) - skipped} analysable, {skipped} skipped "
                f"with hts.analyze's defaults), "
                f"{self.nbytes / 1e6:.1f} MB>")


def _table_columns(present) -> list[str]:
    """``Inventory.table``'s columns, given the keys present in the rows."""
    lora = ["lora_rank", "lora_scale"] if "lora_rank" in present else []
    storage = ["storage"] if "storage" in present else []
    return ["layer_id", "key", "longname", "layer_type", "shape", "dtype", "quant", *storage, "elements", "bytes",
            "N", "M", "rf", "num_evals", *lora, "analysed", "reason"]


def open_model(model: Any, *, split_fused: bool = False) -> Inventory:
    """The inventory of ``model`` — a path (file or folder) or anything ``hts.analyze`` accepts.

    Paths: safetensors (single or ``*.safetensors.index.json``), PyTorch checkpoints (``.pt``/``.pth``/``.bin``,
    read with ``weights_only=True``), GGUF (quantised tensors dequantised to float32 on load; the ggml type in
    the ``quant`` column), ``.npy``/``.npz``, and model folders (Hugging Face layout or a hub-cache
    snapshot). ``split_fused=True`` splits fused QKV / gate-up matrices into their parts (see
    ``hts.adapters.fused``). Raises ``hts.ModelFileError`` for anything unreadable, naming the file.
    """
    if isinstance(model, Inventory):
        return model
    if isinstance(model, (str, os.PathLike)):
        from .adapters.files import open_path

        tensors, weights, config = open_path(model, split=split_fused)
        return Inventory(tensors, path=os.fspath(model), weights_file=weights, config=config)
    from .adapters import inventory

    tensors = inventory(model)
    if split_fused:
        from .adapters.fused import split_fused as split

        tensors = split(tensors, {})
    return Inventory(tensors)
