"""An ONNX file's graph without its weights' bytes: a small protobuf wire-format walker.

``onnx.load`` parses the whole ModelProto into memory, every initializer's ``raw_data`` included: listing a
400 MB model took 1.5 s and 830 MB of memory. ``read_graph(path)`` instead memory-maps the file and walks the
protobuf wire format (a key varint ``field << 3 | wire type``, then a varint, a fixed 4/8 bytes, or a
length-prefixed payload) down to ModelProto.graph (field 7) and its initializers (GraphProto field 5). Each
initializer's TensorProto is handed to protobuf without its ``raw_data`` (field 9), whose offset and length in
the file are kept instead; everything else of the graph (nodes, Constant nodes' tensors, inputs, outputs) is
parsed by protobuf as usual. Every length is checked against the bytes left before it is used.
"""

from __future__ import annotations

import mmap
import os

from ..errors import ModelFileError
from . import limits

__all__ = ["read_graph"]

_MODEL_GRAPH = 7
_GRAPH_INITIALIZER = 5
_TENSOR_RAW_DATA = 9
#: GraphProto's repeated fields other than initializers: node, input, output, value_info, sparse_initializer,
#: quantization_annotation (each becomes protobuf objects, and nodes hts's own).
_GRAPH_ENTRIES = frozenset({1, 11, 12, 13, 14, 15})


class _Wire:
    """Fields of one protobuf message held in ``buf[start:end]``."""

    def __init__(self, buf, path: str) -> None:
        self.buf, self.path = buf, path

    def varint(self, pos: int, end: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            if pos >= end or shift > 63:
                raise ModelFileError(self.path, f"not a readable ONNX model: a bad varint at byte {pos}")
            b = self.buf[pos]
            pos += 1
            value |= (b & 0x7F) << shift
            if b < 0x80:
                return value, pos
            shift += 7

    def fields(self, start: int, end: int):
        """(field number, wire type, field start, payload start, payload end) for each field."""
        pos = start
        while pos < end:
            key, p = self.varint(pos, end)
            number, wtype = key >> 3, key & 7
            if wtype == 0:
                _, q = self.varint(p, end)
            elif wtype in (1, 5):
                q = p + (8 if wtype == 1 else 4)
                if q > end:
                    raise ModelFileError(self.path, f"not a readable ONNX model: truncated at byte {p}")
            elif wtype == 2:
                n, p = self.varint(p, end)
                if n > end - p:
                    raise ModelFileError(self.path, f"not a readable ONNX model: a field of {n} bytes at byte {p} "
                                                    f"runs past its message's end ({end})")
                q = p + n
            else:
                raise ModelFileError(self.path, f"not a readable ONNX model: wire type {wtype} at byte {pos}")
            yield number, wtype, pos, p, q
            pos = q


def read_graph(path: str):
    """(GraphProto without initializer raw_data, {initializer name: (offset, length) of its raw_data}).

    Raises ModelFileError for a file that is not a parseable ModelProto."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                raise ModelFileError(path, "not a readable ONNX model: the file is empty")
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as err:
        raise ModelFileError(path, f"cannot read: {err.strerror or err}") from None
    try:
        wire = _Wire(buf, path)
        graphs = [(p, q) for number, wtype, _, p, q in wire.fields(0, size) if number == _MODEL_GRAPH and wtype == 2]
        if not graphs:
            raise ModelFileError(path, "not a readable ONNX model: no graph")
        if len(graphs) > 1:
            raise ModelFileError(path, "not a readable ONNX model: more than one graph field")
        g0, g1 = graphs[0]
        rest = bytearray()
        tensors = []
        budget, cost, entries = limits.onnx_graph_budget(size), 0, 0
        for number, wtype, at, p, q in wire.fields(g0, g1):
            if number == _GRAPH_INITIALIZER and wtype == 2:
                tensors.append(_strip_raw(wire, p, q))
                cost += limits.ONNX_BYTES_PER_INITIALIZER
            else:
                rest += buf[at:q]
                if number in _GRAPH_ENTRIES:
                    entries += 1
                    cost += limits.ONNX_BYTES_PER_ENTRY
            if len(tensors) > limits.MAX_TENSORS:  # before protobuf builds them
                raise ModelFileError(path, f"more than the {limits.MAX_TENSORS} constant tensors a file may hold")
            if cost > budget:  # before protobuf builds them, too
                raise ModelFileError(path, f"{len(tensors)} initializers and {entries} nodes and other graph entries "
                                           f"(at least) in a {size}-byte file: listing them would take more memory "
                                           f"than 4 × the file + {limits.TORCH_FIXED_BYTES >> 20} MiB allow "
                                           f"(~{limits.ONNX_BYTES_PER_INITIALIZER} bytes per initializer, "
                                           f"~{limits.ONNX_BYTES_PER_ENTRY} per entry): a flood of tiny tensors "
                                           "or nodes, not a model")
        try:
            graph = onnx.GraphProto.FromString(bytes(rest))
            spans = {}
            for stripped, span in tensors:
                t = graph.initializer.add()
                t.ParseFromString(stripped)
                if span is not None:
                    spans[t.name] = span
                else:
                    spans.pop(t.name, None)
        except (DecodeError, ValueError, RuntimeError, UnicodeDecodeError, TypeError) as err:
            raise ModelFileError(path, f"not a readable ONNX model (truncated or damaged?): {str(err)[:200]}") \
                from None
        return graph, spans
    finally:
        buf.close()


def _strip_raw(wire: _Wire, start: int, end: int) -> tuple[bytes, tuple | None]:
    """A TensorProto's bytes without raw_data, and (offset, length) of that raw_data (None when absent)."""
    out = bytearray()
    span = None
    for number, wtype, at, p, q in wire.fields(start, end):
        if number == _TENSOR_RAW_DATA and wtype == 2:
            span = (p, q - p)
        else:
            out += wire.buf[at:q]
    return bytes(out), span
