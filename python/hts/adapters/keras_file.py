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

import io
import json
import os
import struct
import zipfile
import zlib
from typing import NamedTuple

import numpy as np

from ..errors import ModelFileError
from .base import WeightTensor

__all__ = ["from_keras"]

_CONV2D = {"Conv2D", "Conv2DTranspose", "SeparableConv2D", "DepthwiseConv2D", "Convolution2D"}
_MAX_CONFIG_BYTES = 64 * 2**20
_MAX_GROUP_DEPTH = 64


def _h5py(path: str):
    try:
        import h5py
    except ImportError:
        raise ModelFileError(path, "reading Keras files needs h5py: pip install 'hts[keras]'") from None
    return h5py


def from_keras(path: str | os.PathLike) -> list[WeightTensor]:
    """The weight tensors of a ``.keras``, ``.h5`` or ``.weights.h5`` file (see the module docstring)."""
    path = os.fspath(path)
    h5py = _h5py(path)
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
                if info is not None and info.file_size > _MAX_CONFIG_BYTES:
                    raise ModelFileError(path, f"config.json larger than {_MAX_CONFIG_BYTES} bytes")
                config = _json(z.read("config.json"), path) if info is not None else None
            with _StoredMember(path, winfo) as member, h5py.File(member, "r") as f:
                layers = _keras3_layers(_File(f, path, member.size))
            opener = _ZipH5(path)
        else:
            with h5py.File(path, "r") as f:
                raw = f.attrs.get("model_config")
                config = _json(raw, path) if raw is not None else None
                h5 = _File(f, path, os.path.getsize(path))
                if h5.get(f, "layers") is not None and "layer_names" not in f.attrs \
                        and h5.get(f, "model_weights") is None:
                    layers = _keras3_layers(h5)
                else:
                    layers = _legacy_layers(h5)
            opener = _PlainH5(path)
    except ModelFileError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError, TypeError, zipfile.BadZipFile, EOFError, zlib.error) as err:
        raise ModelFileError(path, f"not a readable Keras/HDF5 file (truncated or damaged?): {str(err)[:200]}") \
            from None
    classes = _classes(config) if config is not None else {}
    position = {name: i for i, name in enumerate(classes)}
    layers = sorted(layers, key=lambda item: position.get(item[0], len(position)))  # stable: file order otherwise
    out = []
    for layer, variables in layers:
        cls = classes.get(layer, "")
        for index, variable in enumerate(variables):
            if len(variable.shape) < 2 or cls.endswith("Normalization"):
                continue
            out.append(_record(len(out) + 1, path, layer, cls, index, variable, opener))
    if not out:
        raise ModelFileError(path, "the Keras file holds no weight matrices")
    return out


class _Variable(NamedTuple):
    dpath: str
    shape: tuple
    dtype: str
    problem: str  # why its data cannot be loaded ("" when it can)


class _File:
    """An open HDF5 file and the checks every object taken from it passes (links, storage, sizes)."""

    def __init__(self, f, path: str, size: int) -> None:
        self.f, self.path, self.size = f, path, size

    def get(self, group, rel: str):
        """``group[rel]`` or None, following the path one link at a time: a link to another file (an HDF5
        external link, which would open whatever file it names) is refused, an object found is this file's."""
        import h5py

        obj = group
        for part in [p for p in rel.split("/") if p]:
            if not isinstance(obj, h5py.Group) or part not in obj:
                return None
            link = obj.get(part, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise ModelFileError(self.path, f"{rel!r} is a link to another file ({link.filename!r}); hts reads "
                                                "only the file it was given")
            obj = obj.get(part)
            if obj is None:  # a dangling soft link
                return None
        if obj.file != self.f:
            raise ModelFileError(self.path, f"{rel!r} lives in another file; hts reads only the file it was given")
        return obj

    def variable(self, ds, dpath: str) -> _Variable:
        import h5py

        if not isinstance(ds, h5py.Dataset) or ds.shape is None:
            raise ModelFileError(self.path, "not a dataset", tensor=dpath)
        if ds.is_virtual or ds.external:
            raise ModelFileError(self.path, "its data lives outside the file (HDF5 external storage or a virtual "
                                            "dataset); hts reads only the file it was given", tensor=dpath)
        shape = tuple(int(d) for d in ds.shape)
        dt = np.dtype(ds.dtype)
        problem = ""
        if dt.kind not in "fiub" or dt.fields is not None or dt.subdtype is not None:
            problem = f"{dt} data, not numbers"
        else:
            nbytes = dt.itemsize
            for d in shape:
                nbytes *= d
            if nbytes > self.size:
                problem = (f"declares {nbytes} bytes of data, more than the {self.size}-byte file holds (data never "
                           "written, or compressed: Keras writes neither)")
        return _Variable(dpath, shape, dt.name, problem)


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


def _keras3_layers(h5: _File) -> list:
    """[(layer name, [_Variable, ...])] in the weights file's order. Soft links (aliases of objects listed where
    they live; a loop otherwise) and objects seen before (hard-link cycles) are not followed."""
    import h5py

    layers = []
    seen = set()

    def walk(group, prefix, depth):
        if depth > _MAX_GROUP_DEPTH:
            raise ModelFileError(h5.path, f"groups nested deeper than {_MAX_GROUP_DEPTH} levels", tensor=prefix)
        for key in group:
            if isinstance(group.get(key, getlink=True), h5py.SoftLink):
                continue
            obj = h5.get(group, key)
            if not isinstance(obj, h5py.Group) or obj.id in seen:
                continue
            seen.add(obj.id)
            if key == "vars":
                name = obj.attrs.get("name", prefix.rstrip("/").rsplit("/", 1)[-1])
                name = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
                order = sorted((k for k in obj if k.isdigit()), key=int)
                layers.append((name, [h5.variable(h5.get(obj, k), f"{prefix}vars/{k}") for k in order]))
            else:
                walk(obj, f"{prefix}{key}/", depth + 1)

    walk(h5.f, "", 0)
    return [(n, v) for n, v in layers if v]


def _legacy_layers(h5: _File) -> list:
    import h5py

    root = h5.get(h5.f, "model_weights") or h5.f
    names = root.attrs.get("layer_names")
    if names is None:
        raise ModelFileError(h5.path, "an HDF5 file without Keras 'layer_names': not a Keras model")
    layers = []
    for raw in np.atleast_1d(names):
        name = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        group = h5.get(root, name)
        if not isinstance(group, h5py.Group):
            raise ModelFileError(h5.path, "layer listed in layer_names has no weights group", tensor=name)
        variables = []
        for wraw in np.atleast_1d(group.attrs.get("weight_names", [])):
            wname = wraw.decode("utf-8", "replace") if isinstance(wraw, bytes) else str(wraw)
            ds = h5.get(group, wname)
            if ds is None:
                raise ModelFileError(h5.path, f"weight {wname!r} listed but missing", tensor=name)
            variables.append(h5.variable(ds, ds.name))
        layers.append((name, variables))
    return layers


def _record(layer_id, path, layer, cls, index, variable: _Variable, opener) -> WeightTensor:
    dpath, shape, dtype = variable.dpath, variable.shape, variable.dtype
    stored = shape
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
        w = opener.read(dpath, name, stored)
        return transform(w) if transform else w

    return WeightTensor(layer_id=layer_id, name=name.rsplit("/", 1)[-1], longname=name, key=dpath,
                        layer_type=ltype, shape=shape, dtype=dtype, orientation=orient, load=load,
                        skip_reason=variable.problem or skip, source="keras", groups=groups)


class _PlainH5:
    def __init__(self, path: str) -> None:
        self.path = path

    def read(self, dpath: str, layer: str, shape: tuple) -> np.ndarray:
        h5py = _h5py(self.path)
        try:
            with h5py.File(self.path, "r") as f:
                return self._checked(_File(f, self.path, os.path.getsize(self.path)), dpath, layer, shape)
        except ModelFileError:
            raise
        except (OSError, KeyError, ValueError, RuntimeError, TypeError) as err:
            raise ModelFileError(self.path, f"cannot read {dpath}: {str(err)[:200]}", tensor=layer) from None

    def _checked(self, h5: _File, dpath: str, layer: str, shape: tuple) -> np.ndarray:
        """The dataset's data, after the listing's checks again (the file may have changed since)."""
        ds = h5.get(h5.f, dpath)
        if ds is None:
            raise ModelFileError(self.path, f"{dpath} is gone (the file changed since it was listed)", tensor=layer)
        v = h5.variable(ds, dpath)
        if v.problem or v.shape != shape:
            raise ModelFileError(self.path, v.problem or f"dataset shape {v.shape} changed since the file was listed",
                                 tensor=layer)
        return np.asarray(ds[()])


class _ZipH5(_PlainH5):
    def read(self, dpath: str, layer: str, shape: tuple) -> np.ndarray:
        h5py = _h5py(self.path)
        try:
            with zipfile.ZipFile(self.path) as z:
                info = z.getinfo("model.weights.h5")
            if info.compress_type != zipfile.ZIP_STORED:
                raise ModelFileError(self.path, "model.weights.h5 became compressed since the file was listed",
                                     tensor=layer)
            with _StoredMember(self.path, info) as member, h5py.File(member, "r") as f:
                return self._checked(_File(f, self.path, member.size), dpath, layer, shape)
        except ModelFileError:
            raise
        except (OSError, KeyError, ValueError, RuntimeError, TypeError, zipfile.BadZipFile, EOFError,
                zlib.error) as err:
            raise ModelFileError(self.path, f"cannot read {dpath}: {str(err)[:200]}", tensor=layer) from None


class _StoredMember(io.RawIOBase):
    """A stored (uncompressed) zip member as a seekable read-only file over the archive's own bytes: h5py reads
    each dataset straight into its array (``readinto`` at the member's offset), where ``ZipFile.open`` would copy
    everything through intermediate bytes objects (2x the tensor) and decompress from the start on every seek."""

    def __init__(self, path: str, info: zipfile.ZipInfo) -> None:
        super().__init__()
        self.path = path
        self.f = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        try:
            self.f.seek(info.header_offset)
            head = self.f.read(30)
            if len(head) != 30 or head[:4] != b"PK\x03\x04":
                raise ModelFileError(path, "model.weights.h5: bad zip local header")
            name_len, extra_len = struct.unpack("<HH", head[26:30])
            self.offset = info.header_offset + 30 + name_len + extra_len
            self.size = info.compress_size
            if self.offset + self.size > os.fstat(self.f.fileno()).st_size:
                raise ModelFileError(path, "model.weights.h5 runs past the end of the archive (truncated?)")
        except BaseException:
            self.f.close()
            raise
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, pos: int, whence: int = 0) -> int:
        self.pos = max(0, pos if whence == 0 else self.pos + pos if whence == 1 else self.size + pos)
        return self.pos

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        n = max(0, min(len(view), self.size - self.pos))
        got = 0
        if n:
            self.f.seek(self.offset + self.pos)
            got = self.f.readinto(view[:n]) or 0
        self.pos += got
        return got

    def close(self) -> None:
        if not self.closed:
            self.f.close()
        super().close()
