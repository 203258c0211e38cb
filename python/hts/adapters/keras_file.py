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
import zipfile

import numpy as np

from ..errors import ModelFileError
from .base import WeightTensor

__all__ = ["from_keras"]

_CONV2D = {"Conv2D", "Conv2DTranspose", "SeparableConv2D", "DepthwiseConv2D", "Convolution2D"}
_MAX_CONFIG_BYTES = 64 * 2**20


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
                info = z.getinfo("config.json") if "config.json" in names else None
                if info is not None and info.file_size > _MAX_CONFIG_BYTES:
                    raise ModelFileError(path, f"config.json larger than {_MAX_CONFIG_BYTES} bytes")
                config = _json(z.read("config.json"), path) if info is not None else None
                with z.open("model.weights.h5") as member, h5py.File(member, "r") as f:
                    layers = _keras3_layers(f, path)
            opener = _ZipH5(path)
        else:
            with h5py.File(path, "r") as f:
                raw = f.attrs.get("model_config")
                config = _json(raw, path) if raw is not None else None
                if "layers" in f and "layer_names" not in f.attrs and "model_weights" not in f:
                    layers = _keras3_layers(f, path)
                else:
                    layers = _legacy_layers(f, path)
            opener = _PlainH5(path)
    except ModelFileError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError, TypeError, zipfile.BadZipFile, EOFError) as err:
        raise ModelFileError(path, f"not a readable Keras/HDF5 file (truncated or damaged?): {str(err)[:200]}") \
            from None
    classes = _classes(config) if config is not None else {}
    position = {name: i for i, name in enumerate(classes)}
    layers = sorted(layers, key=lambda item: position.get(item[0], len(position)))  # stable: file order otherwise
    out = []
    for layer, variables in layers:
        cls = classes.get(layer, "")
        for index, (dpath, shape, dtype) in enumerate(variables):
            if len(shape) < 2 or cls.endswith("Normalization"):
                continue
            out.append(_record(len(out) + 1, path, layer, cls, index, dpath, shape, dtype, opener))
    if not out:
        raise ModelFileError(path, "the Keras file holds no weight matrices")
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


def _keras3_layers(f, path: str) -> list:
    """[(layer name, [(dataset path, shape, dtype), ...])] in the weights file's order."""
    layers = []

    def walk(group, prefix):
        for key in group:
            obj = group[key]
            if not hasattr(obj, "keys"):
                continue
            if key == "vars":
                name = obj.attrs.get("name", prefix.rstrip("/").rsplit("/", 1)[-1])
                name = name.decode() if isinstance(name, bytes) else str(name)
                order = sorted((k for k in obj if k.isdigit()), key=int)
                layers.append((name, [_describe(obj[k], f"{prefix}vars/{k}", path) for k in order]))
            else:
                walk(obj, f"{prefix}{key}/")

    walk(f, "")
    return [(n, v) for n, v in layers if v]


def _legacy_layers(f, path: str) -> list:
    root = f.get("model_weights", f)
    names = root.attrs.get("layer_names")
    if names is None:
        raise ModelFileError(path, "an HDF5 file without Keras 'layer_names': not a Keras model")
    layers = []
    for raw in names:
        name = raw.decode() if isinstance(raw, bytes) else str(raw)
        if name not in root:
            raise ModelFileError(path, "layer listed in layer_names has no weights group", tensor=name)
        group = root[name]
        variables = []
        for wraw in group.attrs.get("weight_names", []):
            wname = wraw.decode() if isinstance(wraw, bytes) else str(wraw)
            if wname not in group:
                raise ModelFileError(path, f"weight {wname!r} listed but missing", tensor=name)
            variables.append(_describe(group[wname], group[wname].name, path))
        layers.append((name, variables))
    return layers


def _describe(ds, dpath: str, path: str) -> tuple:
    if not hasattr(ds, "shape") or ds.shape is None:
        raise ModelFileError(path, "not a dataset", tensor=dpath)
    return dpath, tuple(int(d) for d in ds.shape), np.dtype(ds.dtype).name


def _record(layer_id, path, layer, cls, index, dpath, shape, dtype, opener) -> WeightTensor:
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
        w = opener.read(dpath, layer)
        if tuple(w.shape) != (shape if transform is None else (shape[2], shape[1], shape[0])):
            raise ModelFileError(path, f"dataset shape {w.shape} changed since the file was listed", tensor=name)
        return transform(w) if transform else w

    return WeightTensor(layer_id=layer_id, name=name.rsplit("/", 1)[-1], longname=name, key=dpath,
                        layer_type=ltype, shape=shape, dtype=dtype, orientation=orient, load=load,
                        skip_reason=skip, source="keras", groups=groups)


class _PlainH5:
    def __init__(self, path: str) -> None:
        self.path = path

    def read(self, dpath: str, layer: str) -> np.ndarray:
        h5py = _h5py(self.path)
        try:
            with h5py.File(self.path, "r") as f:
                return np.asarray(f[dpath][()])
        except (OSError, KeyError, ValueError, RuntimeError, TypeError) as err:
            raise ModelFileError(self.path, f"cannot read {dpath}: {str(err)[:200]}", tensor=layer) from None


class _ZipH5(_PlainH5):
    def read(self, dpath: str, layer: str) -> np.ndarray:
        h5py = _h5py(self.path)
        try:
            with zipfile.ZipFile(self.path) as z, z.open("model.weights.h5") as member, h5py.File(member, "r") as f:
                return np.asarray(f[dpath][()])
        except (OSError, KeyError, ValueError, RuntimeError, TypeError, zipfile.BadZipFile, EOFError) as err:
            raise ModelFileError(self.path, f"cannot read {dpath}: {str(err)[:200]}", tensor=layer) from None
