"""NumPy files: ``.npy`` (one array, named after the file) and ``.npz`` (one array per member, read lazily).

``allow_pickle=False`` always: object arrays (which would unpickle) are refused. ``.npy`` files are
memory-mapped read-only; ``.npz`` members are read one at a time when analysed, through one zip directory
parsed once per listing (re-opening the archive for every member made an archive of 40,000 tiny members take
over five minutes: the directory is read whole on every open).

Before any ``.npz`` member is read, its .npy header is checked against the zip directory: the bytes its shape
and dtype declare must be exactly what the member holds (a lying header would make numpy allocate the claimed
array first), and a compressed member may not declare more than ``MAX_INFLATION`` times its compressed size
(+ 64 MiB): a decompression bomb is refused in milliseconds, naming the member.
"""

from __future__ import annotations

import os
import threading
import weakref
import zipfile
import zlib
from array import array
from collections.abc import Sequence

import numpy as np

from ..errors import ModelFileError
from . import limits
from .base import WeightTensor
from .lazy import LazyTensors
from .mapping import Entry, from_entries, weight_tensor
from .torch_checkpoint import _INFLATION_SLACK, MAX_INFLATION

__all__ = ["from_npy", "from_npz"]


def from_npy(path: str | os.PathLike) -> list[WeightTensor]:
    path = os.fspath(path)
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise ModelFileError(path, f"not a readable .npy file: {str(err).splitlines()[0] if str(err) else err}") from None
    name = os.path.splitext(os.path.basename(path))[0]
    shape, dtype = tuple(arr.shape), arr.dtype.name
    del arr

    def load() -> np.ndarray:
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            raise ModelFileError(path, f"cannot read: {err}", tensor=name) from None

    return from_entries([Entry(name, shape, dtype, load, _dtype_skip(dtype))], source="npy")


def from_npz(path: str | os.PathLike) -> Sequence[WeightTensor]:
    """The arrays of an ``.npz`` archive by ``mapping``'s state_dict rules: a sequence whose records are made
    when used (the listing is held as columns: an archive of very many tiny members costs its names and a few
    dozen bytes each; docs/formats.md, "Limits")."""
    path = os.fspath(path)
    columns = _Members(_Archive(path))
    try:
        # Open the file here: np.load leaks its own handle when the zip directory is unreadable.
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
            if len(z.files) > limits.MAX_TENSORS:
                raise ModelFileError(path, f"{len(z.files)} members: more than the {limits.MAX_TENSORS} arrays a "
                                           "file may hold")
            members = set(z.zip.namelist())
            for key in z.files:
                member = key if key in members else key + ".npy"
                shape, dtype = _npz_member_header(z, key, member, path)
                columns.append(key, member != key, shape, dtype)
            del members
    except ModelFileError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError) as err:
        raise ModelFileError(path, f"not a readable .npz file: {str(err).splitlines()[0] if str(err) else err}") from None
    if not columns.keys:
        raise ModelFileError(path, "the archive holds no arrays")
    keys = columns.keys
    if any(k.endswith(".weight") for k in keys):  # from_entries's rule: then only the *.weight keys are layers
        rows = np.fromiter((r for r, k in enumerate(keys) if k.endswith(".weight")), np.int32)
    else:
        rows = np.arange(len(keys), dtype=np.int32)
    return _NpzTensors(columns, rows)


class _Members:
    """The members of one archive as columns: key, whether the member name adds ``.npy``, shape, dtype code."""

    __slots__ = ("archive", "keys", "npy", "dtypes", "dtype_codes", "codes", "dims", "dim_start", "odd_shapes")

    def __init__(self, archive: "_Archive") -> None:
        self.archive = archive
        self.keys: list = []
        self.npy = array("b")
        self.dtypes: list = []
        self.dtype_codes: dict = {}
        self.codes = array("i")
        self.dims, self.dim_start = array("q"), array("q", [0])
        self.odd_shapes: dict = {}  # row -> shape, for a shape past int64 (a zero dimension beside huge ones)

    def append(self, key: str, npy: bool, shape: tuple, dtype: str) -> None:
        code = self.dtype_codes.get(dtype)
        if code is None:
            code = self.dtype_codes[dtype] = len(self.dtypes)
            self.dtypes.append(dtype)
        self.keys.append(key)
        self.npy.append(npy)
        self.codes.append(code)
        if all(0 <= d < 2**63 for d in shape):
            self.dims.extend(shape)
        else:
            self.odd_shapes[len(self.keys) - 1] = shape
        self.dim_start.append(len(self.dims))

    def shape(self, row: int) -> tuple:
        if row in self.odd_shapes:
            return self.odd_shapes[row]
        return tuple(self.dims[self.dim_start[row]:self.dim_start[row + 1]])


class _NpzTensors(LazyTensors):
    __slots__ = ("_columns", "_rows")

    def __init__(self, columns: _Members, rows: np.ndarray) -> None:
        self._columns, self._rows = columns, rows

    def __len__(self) -> int:
        return len(self._rows)

    def _make(self, i: int) -> WeightTensor:
        c, row = self._columns, int(self._rows[i])
        key = c.keys[row]
        member = key + ".npy" if c.npy[row] else key
        dtype = c.dtypes[c.codes[row]]
        return weight_tensor(key, c.shape(row), dtype, c.archive.loader(key, member), _dtype_skip(dtype), layer_id=i + 1,
                             source="npz")


def _npz_member_header(z, key: str, member: str, path: str) -> tuple:
    """Shape and dtype of a member from its .npy header, without reading the data."""
    info = z.zip.getinfo(member)
    bomb = info.file_size > MAX_INFLATION * info.compress_size + _INFLATION_SLACK
    if info.compress_type != zipfile.ZIP_STORED and bomb:
        raise ModelFileError(path, f"member declares {info.file_size} bytes from {info.compress_size} compressed "
                                   f"(more than {MAX_INFLATION}x): refused as a decompression bomb", tensor=key)
    with z.zip.open(member) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        header = f.tell()
    if dtype.hasobject:
        raise ModelFileError(path, "object arrays are refused (they would need unpickling)", tensor=key)
    count = 1
    for side in shape:
        count *= int(side)
    declared = count * dtype.itemsize
    if declared != info.file_size - header:
        raise ModelFileError(path, f"its header declares shape {tuple(shape)} {dtype.name} ({declared} bytes) but "
                                   f"the member holds {info.file_size - header}", tensor=key)
    return tuple(shape), dtype.name


class _Archive:
    """The members of one .npz listing, read through one ``ZipFile`` opened at the first load (its directory
    parsed once) and closed when the last loader is gone; reads are serialised by a lock."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.zip: zipfile.ZipFile | None = None

    def _open(self) -> zipfile.ZipFile:
        if self.zip is None:
            self.zip = zipfile.ZipFile(self.path)
            weakref.finalize(self, self.zip.close)
        return self.zip

    def loader(self, key: str, member: str):
        def load() -> np.ndarray:
            try:
                with self.lock, self._open().open(member) as f:
                    return np.lib.format.read_array(f, allow_pickle=False)
            except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error, RuntimeError,
                    NotImplementedError) as err:  # RuntimeError: an encrypted member; zlib.error: a corrupt stream
                raise ModelFileError(self.path, f"cannot read: {type(err).__name__}: {err}", tensor=key) from None
            except MemoryError:
                raise ModelFileError(self.path, "cannot read: not enough memory for the array it declares",
                                     tensor=key) from None

        return load


def _dtype_skip(dtype: str) -> str:
    if dtype in ("float16", "float32", "float64") or dtype.startswith(("int", "uint")):
        return ""
    return f"dtype {dtype} is not analysed"
