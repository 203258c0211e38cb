"""The inventory of a Keras HDF5 weights file, taken in a child process (run as a script, imports numpy and h5py
only, never hts).

The HDF5 C library can crash the whole process on a damaged file (a segfault reading an attribute of a
byte-flipped ``.weights.h5``: bench/results/fuzz_keras_hdf5_segfault.weights.h5). So hts never opens an untrusted
HDF5 file in its own process: ``hts.adapters.keras_file`` runs this script, which walks the file with h5py and
prints one JSON object on stdout:

- ``{"ok": true, "kind": "keras3" | "legacy", "config": <the legacy model_config attribute or null>,
  "layers": [[layer name, [variable, ...]], ...]}``, each variable
  ``{"dpath", "shape", "dtype" (numpy dtype string with byte order), "problem" (why its data cannot be read, or
  ""), "storage"}`` where storage says where the raw bytes are: ``{"contiguous": file offset}``,
  ``{"chunks": [[chunk start index..., file offset, bytes], ...], "chunk_shape": [...]}`` or
  ``{"inline": hex bytes}`` (HDF5 compact layout: at most 64 KiB kept in the object header);
- ``{"ok": false, "error": message, "tensor": name or null}`` for a file it refuses.

The parent then reads each tensor's bytes itself, by offset. Offsets are relative to the HDF5 file's start: for a
``.keras`` archive the script reads the stored zip member ``model.weights.h5`` in place, given its data offset and
size in the archive.

    python hdf5_inventory.py PATH [MEMBER_OFFSET MEMBER_SIZE]
"""

from __future__ import annotations

import io
import json
import os
import sys

MAX_GROUP_DEPTH = 64
MAX_VARIABLES = 200_000
MAX_CHUNKS = 1_000_000


class Refused(Exception):
    def __init__(self, message: str, tensor: str | None = None) -> None:
        super().__init__(message)
        self.tensor = tensor


class Region(io.RawIOBase):
    """Bytes [offset, offset + size) of a file as a seekable read-only file (a stored zip member in place)."""

    def __init__(self, path: str, offset: int, size: int) -> None:
        super().__init__()
        self.f = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        self.offset, self.size, self.pos = offset, size, 0

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


class Walker:
    """An open HDF5 file and the checks every object taken from it passes (links, storage, sizes)."""

    def __init__(self, h5py, f, size: int) -> None:
        self.h5py, self.f, self.size = h5py, f, size
        self.count = 0

    def get(self, group, rel: str):
        """``group[rel]`` or None, one link at a time: a link to another file is refused (it would open
        whatever file it names), an object found must be this file's."""
        obj = group
        for part in [p for p in rel.split("/") if p]:
            if not isinstance(obj, self.h5py.Group) or part not in obj:
                return None
            link = obj.get(part, getlink=True)
            if isinstance(link, self.h5py.ExternalLink):
                raise Refused(f"{rel!r} is a link to another file ({link.filename!r}); hts reads only the file it "
                              "was given")
            obj = obj.get(part)
            if obj is None:  # a dangling soft link
                return None
        if obj.file != self.f:
            raise Refused(f"{rel!r} lives in another file; hts reads only the file it was given")
        return obj

    def variable(self, ds, dpath: str) -> dict:
        import numpy as np

        self.count += 1
        if self.count > MAX_VARIABLES:
            raise Refused(f"more than {MAX_VARIABLES} weight variables")
        if not isinstance(ds, self.h5py.Dataset) or ds.shape is None:
            raise Refused("not a dataset", dpath)
        if ds.is_virtual or ds.external:
            raise Refused("its data lives outside the file (HDF5 external storage or a virtual dataset); hts reads "
                          "only the file it was given", dpath)
        shape = [int(d) for d in ds.shape]
        dt = np.dtype(ds.dtype)
        out = {"dpath": dpath, "shape": shape, "dtype": dt.str, "problem": "", "storage": None}
        if dt.kind not in "fiub" or dt.fields is not None or dt.subdtype is not None:
            out["problem"] = f"{dt} data, not numbers"
            return out
        nbytes = dt.itemsize
        for d in shape:
            nbytes *= d
        if nbytes > self.size:
            out["problem"] = (f"declares {nbytes} bytes of data, more than the {self.size}-byte file holds (data "
                              "never written, or compressed: Keras writes neither)")
            return out
        plist = ds.id.get_create_plist()
        if plist.get_nfilters() > 0:
            out["problem"] = "stored with HDF5 filters (compression or checksums); Keras writes plain data"
            return out
        layout = plist.get_layout()
        if nbytes == 0:
            out["storage"] = {"inline": ""}
        elif layout == self.h5py.h5d.COMPACT:
            out["storage"] = {"inline": np.ascontiguousarray(ds[()]).tobytes().hex()}
        elif layout == self.h5py.h5d.CONTIGUOUS:
            offset = ds.id.get_offset()
            if offset is None:
                out["problem"] = "declared but its data was never written (no storage in the file)"
            else:
                out["storage"] = {"contiguous": int(offset)}
        elif layout == self.h5py.h5d.CHUNKED:
            n = ds.id.get_num_chunks()
            if n > MAX_CHUNKS:
                raise Refused(f"more than {MAX_CHUNKS} chunks", dpath)
            chunks = []
            for i in range(n):
                info = ds.id.get_chunk_info(i)
                chunks.append([*(int(c) for c in info.chunk_offset), int(info.byte_offset), int(info.size)])
            out["storage"] = {"chunks": chunks, "chunk_shape": [int(c) for c in ds.chunks]}
        else:
            out["problem"] = f"HDF5 storage layout {layout} is not one hts reads"
        return out


def keras3_layers(w: Walker) -> list:
    """[(layer name, [variable, ...])] in the weights file's order. Soft links (aliases of objects listed where
    they live; a loop otherwise) and objects seen before (hard-link cycles) are not followed."""
    h5py = w.h5py
    layers = []
    seen = set()

    def walk(group, prefix, depth):
        if depth > MAX_GROUP_DEPTH:
            raise Refused(f"groups nested deeper than {MAX_GROUP_DEPTH} levels", prefix)
        for key in group:
            if isinstance(group.get(key, getlink=True), h5py.SoftLink):
                continue
            obj = w.get(group, key)
            if not isinstance(obj, h5py.Group) or obj.id in seen:
                continue
            seen.add(obj.id)
            if key == "vars":
                name = obj.attrs.get("name", prefix.rstrip("/").rsplit("/", 1)[-1])
                name = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
                order = sorted((k for k in obj if k.isdigit()), key=int)
                layers.append([name, [w.variable(w.get(obj, k), f"{prefix}vars/{k}") for k in order]])
            else:
                walk(obj, f"{prefix}{key}/", depth + 1)

    walk(w.f, "", 0)
    return [item for item in layers if item[1]]


def legacy_layers(w: Walker) -> list:
    import numpy as np

    h5py = w.h5py
    root = w.get(w.f, "model_weights") or w.f
    names = root.attrs.get("layer_names")
    if names is None:
        raise Refused("an HDF5 file without Keras 'layer_names': not a Keras model")
    layers = []
    for raw in np.atleast_1d(names):
        name = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        group = w.get(root, name)
        if not isinstance(group, h5py.Group):
            raise Refused("layer listed in layer_names has no weights group", name)
        variables = []
        for wraw in np.atleast_1d(group.attrs.get("weight_names", [])):
            wname = wraw.decode("utf-8", "replace") if isinstance(wraw, bytes) else str(wraw)
            ds = w.get(group, wname)
            if ds is None:
                raise Refused(f"weight {wname!r} listed but missing", name)
            variables.append(w.variable(ds, ds.name))
        layers.append([name, variables])
    return layers


def inventory(path: str, member: tuple[int, int] | None) -> dict:
    import h5py

    source = Region(path, *member) if member else path
    size = member[1] if member else os.path.getsize(path)
    try:
        with h5py.File(source, "r") as f:
            w = Walker(h5py, f, size)
            if member is None:
                raw = f.attrs.get("model_config")
                if isinstance(raw, bytes):
                    raw = raw.decode("utf-8", "replace")
                config = raw if isinstance(raw, str) else None
                if w.get(f, "layers") is not None and "layer_names" not in f.attrs and w.get(f, "model_weights") is None:
                    return {"ok": True, "kind": "keras3", "config": config, "layers": keras3_layers(w)}
                return {"ok": True, "kind": "legacy", "config": config, "layers": legacy_layers(w)}
            return {"ok": True, "kind": "keras3", "config": None, "layers": keras3_layers(w)}
    finally:
        if member:
            source.close()


def main(argv: list[str]) -> int:
    path = argv[1]
    member = (int(argv[2]), int(argv[3])) if len(argv) > 3 else None
    try:
        out = inventory(path, member)
    except Refused as err:
        out = {"ok": False, "error": str(err), "tensor": err.tensor}
    except RecursionError:
        out = {"ok": False, "error": "structures nested too deeply", "tensor": None}
    except Exception as err:  # h5py raises OSError, KeyError, ValueError, RuntimeError, TypeError, ...
        out = {"ok": False, "error": f"not a readable Keras/HDF5 file (truncated or damaged?): "
                                     f"{type(err).__name__}: {str(err)[:200]}", "tensor": None}
    sys.stdout.write(json.dumps(out))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
