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
    python hdf5_inventory.py --serve      # a fork server: one request per line (see serve())

Listing a file costs ~0.2 s of interpreter start and h5py import; ``hts.adapters.hdf5_lister`` therefore keeps
a server running that has imported h5py once and forks one short-lived child per file (~10 ms), which is still a
separate process: a crash kills the child only.
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


def answer(path: str, member: tuple[int, int] | None) -> dict:
    """The JSON object this script prints for one file (the listing, or why the file is refused)."""
    try:
        return inventory(path, member)
    except Refused as err:
        return {"ok": False, "error": str(err), "tensor": err.tensor}
    except RecursionError:
        return {"ok": False, "error": "structures nested too deeply", "tensor": None}
    except Exception as err:  # h5py raises OSError, KeyError, ValueError, RuntimeError, TypeError, ...
        return {"ok": False, "error": f"not a readable Keras/HDF5 file (truncated or damaged?): "
                                      f"{type(err).__name__}: {str(err)[:200]}", "tensor": None}


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _listed_in_child(path: str, member: list | None, timeout: float) -> tuple[str, int, bytes, bytes]:
    """Forks a child that lists one file and exits; returns (how it ended: "exit" | "signal" | "timeout",
    exit code or signal number, its stdout, its stderr). The child is killed after ``timeout`` seconds."""
    import selectors
    import signal
    import time

    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: stdin from /dev/null, stdout and stderr to the pipes (never the request channel)
        code = 1
        try:
            os.close(out_r)
            os.close(err_r)
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            _write_all(1, json.dumps(answer(path, tuple(member) if member else None)).encode())
            code = 0
        except BaseException:  # noqa: BLE001 - reported through the exit code and stderr
            import traceback

            try:
                _write_all(2, traceback.format_exc().encode("utf-8", "replace"))
            except OSError:
                pass
        finally:
            os._exit(code)
    os.close(out_w)
    os.close(err_w)
    chunks = {out_r: [], err_r: []}
    deadline = time.monotonic() + timeout
    timed_out = False
    with selectors.DefaultSelector() as sel:
        for fd in chunks:
            sel.register(fd, selectors.EVENT_READ)
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            for key, _ in sel.select(left):
                data = os.read(key.fd, 1 << 20)
                if data:
                    chunks[key.fd].append(data)
                else:
                    sel.unregister(key.fd)
    if timed_out:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(out_r)
    os.close(err_r)
    out, err = b"".join(chunks[out_r]), b"".join(chunks[err_r])
    if timed_out:
        return "timeout", 0, out, err
    if os.WIFSIGNALED(status):
        return "signal", os.WTERMSIG(status), out, err
    return "exit", os.waitstatus_to_exitcode(status), out, err


def serve() -> int:
    """Fork server: imports h5py once, then for each request line on stdin (JSON ``{"path", "member",
    "timeout"}``) lists that file in a forked child (:func:`_listed_in_child`) and answers on stdout with one JSON
    line ``{"end", "code", "out", "err"}`` (the last two: byte counts) followed by the child's stdout and stderr.
    A crash or hang of the HDF5 library on one file kills only that child. Exits at the end of stdin."""
    import h5py  # noqa: F401 - the point of the server: every child starts with h5py imported

    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    for line in requests:
        try:
            req = json.loads(line)
            end, code, out, err = _listed_in_child(str(req["path"]), req.get("member"), float(req["timeout"]))
        except (ValueError, KeyError, TypeError, OSError) as exc:
            end, code, out, err = "exit", 1, b"", f"bad request: {exc}".encode()
        head = json.dumps({"end": end, "code": code, "out": len(out), "err": len(err)}).encode() + b"\n"
        replies.write(head + out + err)
        replies.flush()
    return 0


def main(argv: list[str]) -> int:
    if argv[1:] == ["--serve"]:
        return serve()
    path = argv[1]
    member = (int(argv[2]), int(argv[3])) if len(argv) > 3 else None
    sys.stdout.write(json.dumps(answer(path, member)))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
