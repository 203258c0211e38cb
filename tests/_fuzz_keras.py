"""A structure-aware fuzzer for Keras files (tests/test_fuzz_keras.py, bench/fuzz_keras.py).

``hostile_keras(source)`` writes, with ``h5py`` itself, one of the three layouts hts reads — a Keras 3
``.keras`` zip (``config.json`` + ``model.weights.h5``), a Keras 3 ``.weights.h5`` and a legacy ``.h5``
(``model_config`` + ``layer_names`` / ``weight_names``) — well-formed except for a few lies: layer and weight
names pointing nowhere or at groups, attributes of the wrong type, datasets of strings / compounds / scalars /
huge shapes with no data written / compressed zeros, external raw storage, soft links that loop, external
links, hostile config JSON (deep, huge, not an object), zip members missing, compressed or duplicated, and
truncation and flipped bytes (see ``_damage``). Returns ``{file name: bytes}``.
"""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np

from _fuzz_gguf import _Liar

CLASSES = ["Dense", "Conv2D", "Conv1D", "Embedding", "DepthwiseConv2D", "BatchNormalization", "LSTM", "EinsumDense"]
SHAPES = {"Dense": [(8, 4)], "Conv2D": [(3, 3, 2, 4)], "Conv1D": [(3, 4, 5)], "Embedding": [(20, 6)],
          "DepthwiseConv2D": [(3, 3, 4, 1)], "BatchNormalization": [(4,), (4,)], "LSTM": [(6, 16), (4, 16)],
          "EinsumDense": [(8, 2, 4)]}


def _values(draw, shape, dtype="float32") -> np.ndarray:
    count = int(np.prod(shape)) if shape else 1
    a = np.frombuffer(draw.bytes(count * 4), dtype=np.float32).reshape(shape)
    with np.errstate(all="ignore"):
        return np.nan_to_num(a, nan=0.0, posinf=1.0, neginf=-1.0).astype(dtype)


def _dataset(liar, draw, group, name: str, shape: tuple) -> None:
    """A weight dataset: float data as Keras writes it, or (lying) something else under that name."""
    how = liar.pick(["plain"], ["float16", "float64", "int8", "string", "compound", "scalar", "empty", "nodata",
                                "gzip_zeros", "external", "group", "softloop", "extlink", "vlen", "bool"])
    if how == "plain":
        group.create_dataset(name, data=_values(draw, shape))
    elif how in ("float16", "float64", "int8", "bool"):
        group.create_dataset(name, data=_values(draw, shape, {"bool": "int8"}.get(how, how)).astype(how))
    elif how == "string":
        group.create_dataset(name, data=np.array([b"abc"] * (shape[0] if shape else 1)))
    elif how == "vlen":
        import h5py

        group.create_dataset(name, data=["x" * (i + 1) for i in range(3)], dtype=h5py.string_dtype())
    elif how == "compound":
        group.create_dataset(name, data=np.zeros(shape[:1] or (1,), dtype=[("a", "<f4"), ("b", "<i2")]))
    elif how == "scalar":
        group.create_dataset(name, data=np.float32(1.5))
    elif how == "empty":
        group.create_dataset(name, shape=(0, shape[-1] if shape else 3), dtype="float32")
    elif how == "nodata":  # declared, never written: HDF5 stores no bytes and reads back fill values
        group.create_dataset(name, shape=draw.pick([(2**20, 2**20), (4096, 4096), (2**31, 2)]), dtype="float32")
    elif how == "gzip_zeros":  # a few hundred bytes that inflate to 16 MiB
        group.create_dataset(name, data=np.zeros((2048, 2048), np.float32), compression="gzip", chunks=(512, 512))
    elif how == "external":  # raw data in another file, here one every system has
        group.create_dataset(name, shape=(64, 64), dtype="float32",
                             external=[(draw.pick(["/etc/hostname", "/dev/zero", "missing.bin"]), 0, 64 * 64 * 4)])
    elif how == "group":
        group.create_group(name).create_dataset("inner", data=_values(draw, shape))
    elif how == "softloop":
        import h5py

        group[name] = h5py.SoftLink(draw.pick(["/", group.name, "/nowhere"]))
    elif how == "extlink":
        import h5py

        group[name] = h5py.ExternalLink(draw.pick(["/etc/hostname", "other.h5", "/dev/zero"]), "/x")


def _config(liar, draw, layers: list) -> bytes:
    cfg = {"class_name": "Sequential", "config": {"name": "m", "layers": [
        {"class_name": cls, "config": {"name": name}} for name, cls in layers]}}
    text = json.dumps(cfg)
    how = liar.pick(["ok"], ["deep", "list", "garbage", "utf8", "huge_name", "nonstr"])
    if how == "deep":
        text = "[" * 100000 + "]" * 100000
    elif how == "list":
        text = json.dumps([1, 2, {"class_name": 5}])
    elif how == "garbage":
        text = text[: draw.int(0, len(text))]
    elif how == "utf8":
        return b"\xff\xfe" + text.encode()
    elif how == "huge_name":
        text = json.dumps({"class_name": "Dense", "config": {"name": "a" * 100000}})
    elif how == "nonstr":
        text = json.dumps({"class_name": ["Dense"], "config": {"name": {"x": 1}}})
    return text.encode()


def _layers(draw) -> list:
    out = []
    for i in range(draw.int(1, 4)):
        cls = draw.pick(CLASSES)
        out.append((f"{cls.lower()}_{i}", cls))
    return out


def _keras3_weights(liar, draw, layers: list) -> bytes:
    import h5py

    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        root = f.create_group("layers")
        for name, cls in layers:
            gname = liar.pick([name], ["", "vars", "a/b"]) or "x"
            g = root.create_group(gname if gname not in root else name)
            if liar.lying():
                g.create_dataset("vars", data=np.zeros(3))  # "vars" that is not a group
                continue
            v = g.create_group("vars")
            v.attrs["name"] = liar.pick([name], [b"\xff\xfe", 7, "", np.arange(3)])
            for k, shape in enumerate(SHAPES[cls]):
                key = liar.pick([str(k)], ["99999999999999999999999", "-1", "0" * 40])
                _dataset(liar, draw, v, key if key not in v else str(k), shape)
        if liar.lying():
            f["layers/loop"] = h5py.SoftLink("/layers")
    return buf.getvalue()


def _legacy(liar, draw, layers: list) -> bytes:
    import h5py

    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        if liar.pick([True, True, False], [False]):
            f.attrs["model_config"] = _config(liar, draw, layers)
        root = f.create_group("model_weights") if draw.int(0, 1) else f
        names = [n for n, _ in layers]
        root.attrs["layer_names"] = liar.pick([np.array([n.encode() for n in names])],
                                              [np.arange(3), np.array([b"missing"]), np.array([b"/"]),
                                               np.array([b"\xff"]), np.array([b""] * 3)])
        for name, cls in layers:
            if liar.lying():
                continue  # listed, not there
            g = root.create_group(name)
            wnames = [f"{name}/{w}:0" for w in ["kernel", "bias", "recurrent_kernel"][: len(SHAPES[cls])]]
            g.attrs["weight_names"] = liar.pick([np.array([w.encode() for w in wnames])],
                                                [np.array([b"nothing"]), np.array([b"/model_weights"]),
                                                 np.array([7, 8]), np.array([b"."])])
            for w, shape in zip(wnames, SHAPES[cls]):
                _dataset(liar, draw, g, w, shape)
    return buf.getvalue()


def _zip(liar, draw, config: bytes, weights: bytes) -> bytes:
    buf = io.BytesIO()
    members = [("config.json", config), ("metadata.json", b'{"keras_version": "3.15.1"}'),
               ("model.weights.h5", weights)]
    if liar.lying():
        del members[draw.pick([0, 2])]
    if liar.lying():
        members.append((draw.pick(["model.weights.h5", "config.json"]), draw.bytes(draw.int(0, 64))))
    deflate = liar.pick([zipfile.ZIP_STORED], [zipfile.ZIP_DEFLATED])
    with zipfile.ZipFile(buf, "w", compression=deflate) as z:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Duplicate name"
            for name, blob in members:
                z.writestr(name, blob)
    return buf.getvalue()


def _damage(liar, draw, blob: bytes) -> bytes:
    """Truncation anywhere, or a few flipped bytes anywhere (inside HDF5 structures too: they can crash the HDF5
    C library itself — bench/results/fuzz_keras_hdf5_segfault.weights.h5 — which hts survives because it lists
    HDF5 files in a child process)."""
    if liar.lying() and blob:
        if draw.int(0, 1):
            blob = blob[: draw.int(0, len(blob) - 1)]
        else:
            raw = bytearray(blob)
            for _ in range(draw.int(1, 8)):
                raw[draw.int(0, len(raw) - 1)] ^= 1 << draw.int(0, 7)
            blob = bytes(raw)
    return blob


def hostile_keras(draw) -> dict:
    """One Keras file (``m.keras``, ``m.weights.h5`` or ``m.h5``), well-formed except for a few lies."""
    liar = _Liar(draw)
    layers = _layers(draw)
    layout = draw.pick(["keras", "keras", "weights", "legacy", "legacy"])
    if layout == "keras":
        blob = _zip(liar, draw, _config(liar, draw, layers), _damage(liar, draw, _keras3_weights(liar, draw, layers)))
        return {"m.keras": _damage(liar, draw, blob)}
    if layout == "weights":
        return {"m.weights.h5": _damage(liar, draw, _keras3_weights(liar, draw, layers))}
    return {"m.h5": _damage(liar, draw, _legacy(liar, draw, layers))}


#: Bytes loading may allocate per file byte (float16 -> float32, transposed copies), plus fixed slack.
WIDEN = 8.0
