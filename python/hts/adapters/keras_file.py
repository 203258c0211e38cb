"""Keras models without TensorFlow or Keras (the ``keras`` extra: ``h5py``).

Three layouts, all HDF5 underneath:

- Keras 3 ``.keras``: a zip of ``config.json`` (the model's architecture), ``metadata.json`` and
  ``model.weights.h5``, read from the zip member in place (nothing is extracted). In the weights file each layer
  is a group ``.../layers/<key>/vars`` (attribute ``name``: the layer's name) holding datasets ``0, 1, ...``
  in the layer's variable order (kernel first, then bias, ...); nested models nest ``layers/``.
- Keras 3 ``*.weights.h5``: the same weights file alone (no config: types from the number of dimensions).
- legacy ``.h5`` (Keras 2, ``tf.keras``, Keras 3's ``save("x.h5")``): root attribute ``model_config`` (JSON),
  group ``model_weights`` (or the root, for ``save_weights``) with attribute ``layer_names``; each layer's
  group lists its datasets in attribute ``weight_names`` (``"dense/kernel:0"``).

Layer types come from the config's ``class_name`` of the layer with that name:

| Keras class | stored kernel | hts type, orientation |
|---|---|---|
| Dense, EinsumDense (2-D) | (in, out) | dense, ``in_out`` |
| Conv2D, Conv2DTranspose, SeparableConv2D (pointwise) | (kh, kw, in, out) | conv2d, ``kh_kw_in_out`` (HWIO) |
| DepthwiseConv2D | (kh, kw, in, multiplier) | conv2d, ``kh_kw_in_out``, groups = in |
| Conv1D | (k, in, out) | conv1d, loaded as (out, in, k) (``out_in_k``) |
| Embedding | (rows, dim) | embedding, ``out_in`` |
| *Normalization | 1-D | not listed (not matrices) |

(Conv2DTranspose stores (kh, kw, out, in): each kh·kw slice is the transpose of the forward one, whose singular
values are the same, so it is analysed as stored.) Every other variable of two or more dimensions is listed:
2-D as dense ``in_out`` (LSTM/GRU kernels and recurrent kernels), 4-D as HWIO conv2d, others skipped with the
reason. Without a config the same rules apply by number of dimensions. ``layer_id`` counts the listed tensors
from 1 in the file's layer order (``layer_names`` for legacy files, the weights file's order for Keras 3).
Errors are ``hts.ModelFileError`` naming the file (and the layer).
"""

from __future__ import annotations

import json
import os
import signal
import struct
import zipfile
import zlib
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ..errors import ModelFileError
from .base import WeightTensor
from .hdf5_lister import list_hdf5
from .lazy import LazyTensors

__all__ = ["from_keras"]

_CONV2D = {"Conv2D", "Conv2DTranspose", "SeparableConv2D", "DepthwiseConv2D", "Convolution2D"}
_MAX_CONFIG_BYTES = 64 * 2**20


def _h5py(path: str) -> None:
    """h5py must be installed (it runs in the child process that lists the file)."""
    import importlib.util

    if importlib.util.find_spec("h5py") is None:
        raise ModelFileError(path, "reading Keras files needs h5py: pip install 'hts[keras]'")


class _KerasTensors(LazyTensors):
    """The records of one file, made when used from its listed variables (``items``: (layer, Keras class,
    variable index, ``_Variable``) of each listed tensor, in order): a file of very many tiny datasets holds a
    tuple per tensor, not a record and its loader (docs/formats.md, "Limits")."""

    __slots__ = ("_path", "_items", "_data")

    def __init__(self, path: str, items: list, data: _Data) -> None:
        self._path, self._items, self._data = path, items, data

    def __len__(self) -> int:
        return len(self._items)

    def _make(self, i: int) -> WeightTensor:
        layer, cls, index, variable = self._items[i]
        return _record(i + 1, self._path, layer, cls, index, variable, self._data)


def from_keras(path: str | os.PathLike) -> Sequence[WeightTensor]:
    """The weight tensors of a ``.keras``, ``.h5`` or ``.weights.h5`` file (see the module docstring): a
    sequence whose records are made when used."""
    path = os.fspath(path)
    _h5py(path)
    member = None
    config = None
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
                if "model.weights.h5" not in names:
                    raise ModelFileError(path, "a zip without model.weights.h5: not a Keras 3 .keras archive")
                winfo = z.getinfo("model.weights.h5")
                if winfo.compress_type != zipfile.ZIP_STORED:
                    raise ModelFileError(path, "model.weights.h5 is compressed inside the archive (Keras stores it "
                                               "uncompressed; reading HDF5 through a decompressor is unbounded): "
                                               "unzip the archive and read its model.weights.h5")
                info = z.getinfo("config.json") if "config.json" in names else None
                archive_size = os.path.getsize(path)
                for member in (winfo, info):
                    if member is not None and (member.compress_size > archive_size or (
                            member.compress_type == zipfile.ZIP_STORED and member.compress_size != member.file_size)):
                        # zipfile would read (and allocate) the claimed size before finding the file short
                        raise ModelFileError(path, f"zip member {member.filename} claims {member.compress_size} "
                                                   f"stored bytes for {member.file_size} in a {archive_size}-byte "
                                                   "archive: the zip directory is damaged")
                if info is not None and info.file_size > _MAX_CONFIG_BYTES:
                    raise ModelFileError(path, f"config.json larger than {_MAX_CONFIG_BYTES} bytes")
                config = _json(z.read("config.json"), path) if info is not None else None
            member = _member_region(path, winfo)
    except ModelFileError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError, zipfile.BadZipFile, EOFError, zlib.error) as err:
        raise ModelFileError(path, f"not a readable Keras archive (truncated or damaged?): {str(err)[:200]}") \
            from None
    stamp = _stamp(path)
    listing = _probe(path, member)
    if member is None and listing.get("config") is not None:
        config = _json(listing["config"], path)
    data = _Data(path, member, stamp)
    dtypes: dict = {}  # one string per dtype, not one per variable
    layers = [(name, [_variable(path, v, dtypes) for v in variables])
              for name, variables in listing.pop("layers", [])]
    del listing
    classes = _classes(config) if config is not None else {}
    position = {name: i for i, name in enumerate(classes)}
    layers = sorted(layers, key=lambda item: position.get(item[0], len(position)))  # stable: file order otherwise
    items = [(layer, cls, index, variable) for layer, variables in layers for cls in (classes.get(layer, ""),)
             for index, variable in enumerate(variables)
             if len(variable.shape) >= 2 and not cls.endswith("Normalization")]
    if not items:
        raise ModelFileError(path, "the Keras file holds no weight matrices")
    return _KerasTensors(path, items, data)


#: The child process that lists an HDF5 file may take this long (a damaged file can make libhdf5 loop): a base
#: plus a second per MB of HDF5 file, at most PROBE_TIMEOUT_MAX_S.
PROBE_TIMEOUT_S = 10.0
PROBE_TIMEOUT_MAX_S = 300.0


def _probe(path: str, member: tuple[int, int] | None) -> dict:
    """Lists the HDF5 file in another process (hdf5_inventory.py through hdf5_lister's fork server): a crash of
    the HDF5 C library on a damaged file kills that process, never this one, and becomes a ModelFileError."""
    size = member[1] if member else os.path.getsize(path)
    timeout = min(PROBE_TIMEOUT_MAX_S, PROBE_TIMEOUT_S + size / 1e6)
    proc = list_hdf5(os.path.abspath(path), member, timeout)
    if proc.end == "timeout":
        raise ModelFileError(path, f"listing its HDF5 structure did not finish within {timeout:.0f} s "
                                   "(a damaged file can make the HDF5 library loop)")
    if proc.end == "signal":
        try:
            name = signal.Signals(proc.code).name
        except ValueError:
            name = f"signal {proc.code}"
        raise ModelFileError(path, f"the HDF5 library crashed reading it ({name}): the file is damaged "
                                   "(hts lists HDF5 files in a separate process, so only that process died)")
    try:
        listing = json.loads(proc.out)
    except ValueError:
        listing = None
    if proc.code != 0 or not isinstance(listing, dict):
        tail = proc.err.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise ModelFileError(path, f"listing its HDF5 structure failed: {tail[0][:300]}")
    if not listing.get("ok"):
        raise ModelFileError(path, str(listing.get("error", "not a Keras file")), tensor=listing.get("tensor"))
    return listing


class _Variable(NamedTuple):
    dpath: str
    shape: tuple
    dtype: str  # numpy dtype string with byte order, e.g. "<f4"
    problem: str  # why its data cannot be loaded ("" when it can)
    storage: dict | None


def _variable(path: str, v, dtypes: dict) -> _Variable:
    try:
        dtype = str(np.dtype(v["dtype"]).str)
        return _Variable(str(v["dpath"]), tuple(int(d) for d in v["shape"]), dtypes.setdefault(dtype, dtype),
                         str(v.get("problem", "")), v.get("storage"))
    except (KeyError, TypeError, ValueError) as err:
        raise ModelFileError(path, f"listing its HDF5 structure gave a malformed entry: {str(err)[:200]}") from None


def _stamp(path: str) -> tuple:
    st = os.stat(path)
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def _member_region(path: str, info: zipfile.ZipInfo) -> tuple[int, int]:
    """(offset of the stored member's data in the archive, its size), from its local header."""
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        head = f.read(30)
        if len(head) != 30 or head[:4] != b"PK\x03\x04":
            raise ModelFileError(path, "model.weights.h5: bad zip local header")
        name_len, extra_len = struct.unpack("<HH", head[26:30])
        offset = info.header_offset + 30 + name_len + extra_len
        if offset + info.compress_size > os.fstat(f.fileno()).st_size:
            raise ModelFileError(path, "model.weights.h5 runs past the end of the archive (truncated?)")
    return offset, info.compress_size


class _Data:
    """Reads a variable's raw bytes from the file at the offsets the child listed — hts never opens the HDF5
    file with the HDF5 library in its own process — after checking that the file is the one listed."""

    def __init__(self, path: str, member: tuple[int, int] | None, stamp: tuple) -> None:
        self.path, self.stamp = path, stamp
        self.base = member[0] if member else 0
        self.size = member[1] if member else stamp[0]

    def read(self, v: _Variable, layer: str) -> np.ndarray:
        try:
            return self._read(v, layer)
        except OSError as err:  # removed, unreadable or an I/O error since it was listed
            raise ModelFileError(self.path, f"cannot read it: {err.strerror or err}", tensor=layer) from None

    def _read(self, v: _Variable, layer: str) -> np.ndarray:
        if _stamp(self.path) != self.stamp:
            raise ModelFileError(self.path, "the file changed since it was listed", tensor=layer)
        dt = np.dtype(v.dtype)
        storage = v.storage or {}
        count = int(np.prod(v.shape, dtype=np.int64))
        nbytes = count * dt.itemsize
        try:
            with open(self.path, "rb") as f:  # one open file for all of the variable's chunks
                a = self._array(f, storage, nbytes, v, layer, dt)
        except (KeyError, TypeError, ValueError, OverflowError) as err:
            raise ModelFileError(self.path, f"{v.dpath}: bad storage listing: {str(err)[:200]}", tensor=layer) \
                from None
        if _stamp(self.path) != self.stamp:  # changed while it was being read: the bytes may be torn
            raise ModelFileError(self.path, "the file changed while it was being read", tensor=layer)
        return a.astype(dt.newbyteorder("="), copy=False) if not dt.isnative else a

    def _array(self, f, storage: dict, nbytes: int, v: _Variable, layer: str, dt: np.dtype) -> np.ndarray:
        if "inline" in storage:
            raw = bytes.fromhex(storage["inline"])
            if len(raw) != nbytes:
                raise ModelFileError(self.path, f"{v.dpath}: {len(raw)} bytes of data for {nbytes}", tensor=layer)
            a = np.frombuffer(raw, dt).reshape(v.shape)
        elif "contiguous" in storage:
            a = self._bytes(f, int(storage["contiguous"]), nbytes, v, layer, dt).reshape(v.shape)
        elif "chunks" in storage:
            a = self._chunked(f, storage, v, layer, dt)
        else:
            raise ModelFileError(self.path, f"{v.dpath}: no data", tensor=layer)
        return a

    def _bytes(self, f, offset: int, nbytes: int, v: _Variable, layer: str, dt: np.dtype) -> np.ndarray:
        if offset < 0 or nbytes < 0 or offset + nbytes > self.size:
            raise ModelFileError(self.path, f"{v.dpath}: its data (bytes {offset}..{offset + nbytes}) runs past the "
                                            f"end of the {self.size}-byte HDF5 file (truncated?)", tensor=layer)
        f.seek(self.base + offset)
        a = np.empty(nbytes // dt.itemsize if dt.itemsize else 0, dt)
        got = f.readinto(memoryview(a).cast("B")) if nbytes else 0
        if got != nbytes:
            raise ModelFileError(self.path, f"{v.dpath}: short read ({got} of {nbytes} bytes)", tensor=layer)
        return a

    def _chunked(self, f, storage: dict, v: _Variable, layer: str, dt: np.dtype) -> np.ndarray:
        cshape = tuple(int(c) for c in storage["chunk_shape"])
        if len(cshape) != len(v.shape) or any(c <= 0 for c in cshape):
            raise ModelFileError(self.path, f"{v.dpath}: bad chunk shape {cshape}", tensor=layer)
        out = np.zeros(v.shape, dt)  # chunks never written read as HDF5's default fill value, 0
        cbytes = int(np.prod(cshape, dtype=np.int64)) * dt.itemsize
        for entry in storage["chunks"]:
            start, offset, size = [int(x) for x in entry[:-2]], int(entry[-2]), int(entry[-1])
            if len(start) != len(cshape) or size != cbytes or \
                    any(s < 0 or s >= n or s % c for s, n, c in zip(start, v.shape, cshape)):
                raise ModelFileError(self.path, f"{v.dpath}: bad chunk at {start} ({size} bytes)", tensor=layer)
            block = self._bytes(f, offset, size, v, layer, dt).reshape(cshape)
            sel = tuple(slice(s, min(s + c, n)) for s, c, n in zip(start, cshape, v.shape))
            out[sel] = block[tuple(slice(0, x.stop - x.start) for x in sel)]
        return out


def _json(raw, path: str):
    try:
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8")
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError, TypeError) as err:
        raise ModelFileError(path, f"the model config is not valid JSON: {str(err)[:200]}") from None


def _classes(config) -> dict:
    """layer name -> Keras class name, from every nested layer of the config, in the config's (model) order."""
    out: dict = {}
    stack = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            cfg = item.get("config")
            if isinstance(item.get("class_name"), str) and isinstance(cfg, dict) and isinstance(cfg.get("name"), str):
                out.setdefault(cfg["name"], item["class_name"])
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))
    return out


def _record(layer_id, path, layer, cls, index, variable: _Variable, opener) -> WeightTensor:
    dpath, shape, dtype = variable.dpath, variable.shape, np.dtype(variable.dtype).name
    kernel = index == 0 or dpath.rsplit("/", 1)[-1].split(":")[0] in ("kernel", "embeddings")
    groups = 0
    transform = None
    skip = ""
    if kernel and cls == "Embedding" and len(shape) == 2:
        ltype, orient = "embedding", "out_in"
    elif kernel and cls == "Conv1D" and len(shape) == 3:
        ltype, orient = "conv1d", "out_in_k"
        shape = (shape[2], shape[1], shape[0])
        transform = lambda w: np.ascontiguousarray(w.transpose(2, 1, 0))
    elif len(shape) == 4 and (cls in _CONV2D or not cls):
        ltype, orient = "conv2d", "kh_kw_in_out"
        groups = shape[2] if cls == "DepthwiseConv2D" else (1 if cls else 0)
    elif len(shape) == 2:
        ltype, orient = "dense", "in_out"
    else:
        ltype, orient = "unknown", "matrix"
        skip = f"{len(shape)}-D variable of a {cls or 'Keras'} layer: not a weight matrix"
    name = layer if index == 0 else f"{layer}.{index}"
    if cls == "DepthwiseConv2D":  # (kh, kw, in, mult): per input channel a (mult × 1) map
        skip = skip or "depthwise convolution: each channel's kernel is a (multiplier × 1) map, not a matrix"

    def load():
        if variable.problem:
            raise ModelFileError(path, variable.problem, tensor=name)
        w = opener.read(variable, name)
        return transform(w) if transform else w

    return WeightTensor(layer_id=layer_id, name=name.rsplit("/", 1)[-1], longname=name, key=dpath,
                        layer_type=ltype, shape=shape, dtype=dtype, orientation=orient, load=load,
                        skip_reason=variable.problem or skip, source="keras", groups=groups)
