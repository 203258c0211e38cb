"""GGUF files (llama.cpp, Ollama): every weight matrix, dequantised to float32 one tensor at a time.

The header is read by hts's own parser (``gguf_format``: every count, length, offset checked before use). A
tensor's bytes are read when it is analysed, with plain ``readinto`` in chunks of ``CHUNK_BYTES`` (no memory
map: a file truncated or rewritten underneath gives an error, not a SIGBUS; a file whose size or mtime changed
since its header was read is refused), and decoded straight into the float32 result:

- F32, F16, F64 as stored; BF16 widened to float32 exactly;
- Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and the K-quants Q2_K, Q3_K, Q4_K, Q5_K, Q6_K by hts's C++ kernel
  (``cpp/dequant.cpp``, bit-identical to the ``gguf`` package's numpy reference, multi-threaded);
- the other block types the ``gguf`` package can decode (IQ1_S/M, IQ2_XXS/XS/S, IQ3_XXS/S, IQ4_NL/XS, TQ1_0,
  TQ2_0, MXFP4, NVFP4, ...) by that package's numpy code, when it is installed (``pip install 'hts[gguf]'``),
  else listed as skipped with that advice;
- integer tensors, types nobody decodes (Q8_K, Q8_1), unknown type ids and quantised data in a big-endian file
  are listed as skipped with the reason, naming the type.

Names: the LLaMA family's tensors get their transformers names (``gguf_names``; the GGUF name stays as
``key``). Layer ids count the ``*.weight`` tensors from 1 in natural order of those names, as for a safetensors
checkpoint of the same model. A 3-D mixture-of-experts stack (``ffn_up_exps``: experts × rows × cols) is
listed as one matrix per expert (``...experts.<e>.up_proj``), each read on its own.

The listing is a read-only sequence (``GGUFTensorList``) whose records are made on use from the header's
columns: a file of 200,000 empty tensors is listed and analysed within 4 × its size + 16 MB (docs/formats.md,
"Limits").
"""

from __future__ import annotations

import importlib.util
import os
from array import array
from collections.abc import Sequence

import numpy as np

from ..errors import ModelFileError
from .base import WeightTensor
from .dtypes import bf16_to_float32
from .gguf_format import GGML_TYPES, GGUFFile, GGUFTensorInfo, read_gguf
from .gguf_names import hf_name
from .lazy import LazyTensors

__all__ = ["CHUNK_BYTES", "GGUFTensorList", "from_gguf", "load_tensor"]

#: Raw bytes read (and decoded) per step: the float32 result plus this much is all a load needs.
CHUNK_BYTES = 16 * 2**20

#: A 3-D ``*_exps`` stack with more experts than this is listed whole (and skipped as 3-D), not split.
MAX_EXPERTS = 4096

_PLAIN = {"F32": "f4", "F16": "f2", "F64": "f8"}
_DTYPE_NAMES = {"F32": "float32", "F16": "float16", "F64": "float64", "BF16": "bfloat16", "I8": "int8",
                "I16": "int16", "I32": "int32", "I64": "int64"}
_NATIVE = frozenset({"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"})


def _gguf_package_decodes(type_name: str) -> bool:
    if importlib.util.find_spec("gguf") is None:
        return False
    from gguf import quants
    from gguf.constants import GGMLQuantizationType

    qtype = getattr(GGMLQuantizationType, type_name, None)
    return qtype is not None and qtype in getattr(quants, "_type_traits", {})


def skip_reason(info: GGUFTensorInfo, byte_order: str) -> str:
    """Why a tensor's values cannot be decoded ("" when they can)."""
    if info.type_id not in GGML_TYPES:
        return f"unknown ggml type id {info.type_id} (a type this hts does not know, or one removed from ggml)"
    name = info.type_name
    if name.startswith("I") and name[1:].isdigit():
        return f"{name} tensor: integer data (indices or counts), not a weight matrix"
    if name in _PLAIN or name == "BF16":
        return ""
    if byte_order == ">":
        return f"{name}: quantised blocks in a big-endian GGUF file are not supported"
    if name in _NATIVE:
        return ""
    if importlib.util.find_spec("gguf") is None:
        return f"{name}: dequantising this type needs the gguf package: pip install 'hts[gguf]'"
    if not _gguf_package_decodes(name):
        return f"{name}: no dequantiser for this ggml type (neither hts nor the installed gguf package has one)"
    return ""


def from_gguf(path: str | os.PathLike) -> "GGUFTensorList":
    header = read_gguf(path)
    table = header.tensors
    if not len(table):
        raise ModelFileError(header.path, "holds no tensors")
    # only ``*.weight`` tensors are listed (the transformers name keeps the GGUF name's suffix, an expert's too):
    # one item per such tensor, or per expert of a split 3-D stack: (row, expert or -1), as two int columns
    weights = np.flatnonzero(table.ends_with(b".weight")).astype(np.int32)
    if table.any_name_contains(b"_exps."):
        rows, experts = array("i"), array("i")
        for row in map(int, weights):
            info = table[row]
            if len(info.dims) == 3 and "_exps." in info.name and 0 < info.dims[2] <= MAX_EXPERTS and info.count \
                    and not skip_reason(info, header.byte_order):
                rows.extend([row] * info.dims[2])
                experts.extend(range(info.dims[2]))
            else:
                rows.append(row)
                experts.append(-1)
    else:
        rows, experts = weights, None
    names = _ItemNames(table, header.architecture, rows, experts)
    # forward-pass order from the (HF) names, as for safetensors: the same model gives the same layer ids
    from .ordering import architecture_key
    from .sorting import lean_argsort

    return GGUFTensorList(header, names, lean_argsort(names, architecture_key))


class _ItemNames(Sequence):
    """The (HF) name of each item, made when asked for: only the header's GGUF names are held."""

    __slots__ = ("table", "arch", "rows", "experts")

    def __init__(self, table, arch: str, rows, experts: array | None) -> None:
        self.table, self.arch, self.rows, self.experts = table, arch, rows, experts

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, j: int) -> str:
        gguf_name = self.table.name(self.rows[j])
        name = hf_name(gguf_name, self.arch)
        e = -1 if self.experts is None else self.experts[j]
        if e < 0:
            return name
        if name != gguf_name:
            return name.replace("experts.", f"experts.{e}.", 1)
        stem, last = gguf_name.rsplit(".", 1)
        return f"{stem}.{e}.{last}"


class GGUFTensorList(LazyTensors):
    """The ``WeightTensor`` records of a GGUF file in forward-pass order, each made when it is asked for: the
    header's columns and one int32 per listed tensor are held, so a file of very many tiny tensors costs a few
    dozen bytes per tensor, not a record and a closure each (docs/formats.md, "Limits")."""

    __slots__ = ("_header", "_names", "_order")

    def __init__(self, header: GGUFFile, names: _ItemNames, order: np.ndarray) -> None:
        self._header, self._names, self._order = header, names, order

    def __len__(self) -> int:
        return len(self._order)

    def _make(self, i: int) -> WeightTensor:
        j = int(self._order[i])
        names = self._names
        row = int(names.rows[j])
        expert = -1 if names.experts is None else names.experts[j]
        return _tensor(self._header, i + 1, names[j][: -len(".weight")], self._header.tensors[row], row,
                       None if expert < 0 else expert)

    def __repr__(self) -> str:
        return f"<{len(self)} tensors of {self._header.path}>"


class TensorLoader:
    """``load_tensor(header, header.tensors[row], expert)`` as a small callable (a closure per tensor costs
    more)."""

    __slots__ = ("header", "row", "expert")

    def __init__(self, header: GGUFFile, row: int, expert: int | None) -> None:
        self.header, self.row, self.expert = header, row, expert

    def __call__(self) -> np.ndarray:
        return load_tensor(self.header, self.header.tensors[self.row], self.expert)


def _tensor(header: GGUFFile, layer_id: int, longname: str, info: GGUFTensorInfo, row: int,
            expert: int | None) -> WeightTensor:
    key = info.name
    shape = info.shape if expert is None else info.shape[1:]
    skip = skip_reason(info, header.byte_order)
    if not skip and len(shape) not in (2, 4):
        skip = f"{len(shape)}-D tensor is not a weight matrix (only 2-D and 4-D are analysed)"
    layer_type = {2: "dense", 4: "conv2d"}.get(len(shape), "unknown")
    orientation = {2: "out_in", 4: "out_in_kh_kw"}.get(len(shape), "matrix")
    type_name = info.type_name
    quantised = type_name not in _DTYPE_NAMES
    stored = -1 if info.nbytes is None else (info.nbytes if expert is None else info.nbytes // info.dims[2])
    if expert is not None:
        key = f"{key}[{expert}]"
    return WeightTensor(
        layer_id=layer_id, name=longname.rsplit(".", 1)[-1], longname=longname, key=key, layer_type=layer_type,
        shape=shape, dtype=_DTYPE_NAMES.get(type_name, type_name), orientation=orientation,
        load=TensorLoader(header, row, expert), skip_reason=skip, source="gguf",
        quant=type_name, stored_bytes=stored if quantised else -1)


def load_tensor(header: GGUFFile, info: GGUFTensorInfo, expert: int | None = None) -> np.ndarray:
    """The values of one tensor (or one expert of a 3-D stack), read and decoded now."""
    name = info.name if expert is None else f"{info.name}[{expert}]"
    reason = skip_reason(info, header.byte_order)
    if reason:
        raise ModelFileError(header.path, reason, tensor=name)
    shape = info.shape if expert is None else info.shape[1:]
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    nbytes = info.nbytes if expert is None else info.nbytes // info.dims[2]
    begin = info.begin + (0 if expert is None else expert * nbytes)
    type_name = info.type_name
    _, block, type_size = GGML_TYPES[info.type_id]
    with open(header.path, "rb") as f:
        st = os.fstat(f.fileno())
        if st.st_size != header.size or st.st_mtime_ns != header.mtime_ns:
            raise ModelFileError(header.path, "the file changed since its header was read; open it again",
                                 tensor=name)
        f.seek(begin)
        if type_name in _PLAIN:
            out = np.empty(count, dtype=header.byte_order + _PLAIN[type_name])
            _read_exactly(f, out, header.path, name)
            if header.byte_order == ">":
                out = out.astype(out.dtype.newbyteorder("="))
            return out.reshape(shape)
        out = np.empty(count, dtype=np.float32)
        if nbytes == 0:
            return out.reshape(shape)
        row_bytes = info.dims[0] // block * type_size
        step = max(row_bytes, CHUNK_BYTES // row_bytes * row_bytes) if row_bytes else nbytes
        raw = np.empty(min(nbytes, step), dtype=np.uint8)
        decode = _decoder(type_name, info.type_id, header.byte_order)
        done = 0
        for start in range(0, nbytes, step):
            n = min(step, nbytes - start)
            _read_exactly(f, raw[:n], header.path, name)
            values = n // type_size * block
            decode(raw[:n], out[done:done + values], row_bytes, header.path, name)
            done += values
    return out.reshape(shape)


def _decoder(type_name: str, type_id: int, byte_order: str):
    if type_name == "BF16":
        def bf16(raw, out, _row, _path, _name):
            bits = raw.view(byte_order + "u2")
            bf16_to_float32(bits.astype(np.uint16) if byte_order == ">" else bits, out=out)
        return bf16
    if type_name in _NATIVE:
        from .._native import _core
        from .._threads import resolve_threads

        threads = resolve_threads(None)

        def native(raw, out, _row, path, name):
            try:
                _core.dequantize_ggml(type_id, raw, out, threads)
            except ValueError as err:  # pragma: no cover - sizes are checked when the header is read
                raise ModelFileError(path, f"{type_name}: {err}", tensor=name) from None
        return native

    def package(raw, out, row_bytes, path, name):
        from gguf import quants
        from gguf.constants import GGMLQuantizationType

        try:
            with np.errstate(all="ignore"):
                values = quants.dequantize(raw.reshape(-1, row_bytes), GGMLQuantizationType[type_name])
            out[...] = values.reshape(-1)
        except (ValueError, IndexError, TypeError, AssertionError, NotImplementedError) as err:
            raise ModelFileError(path, f"{type_name}: the gguf package could not dequantise it: {err}",
                                 tensor=name) from None
    return package


def _read_exactly(f, out: np.ndarray, path: str, name: str) -> None:
    view = memoryview(out).cast("B")
    got = f.readinto(view)
    if got != view.nbytes:
        raise ModelFileError(path, f"file truncated: expected {view.nbytes} bytes of data, got {got}", tensor=name)
