"""ONNX models (``.onnx``, the ``onnx`` extra): the weights are the graph's constants, typed by the node using them.

A weight is a constant operand of a weight-consuming node; its layer type and axis order come from that node:

| node | weight operand | layer type, orientation |
|---|---|---|
| MatMul | input 1 (input 0 when only that one is constant) | dense, ``in_out`` (``out_in`` for input 0) |
| Gemm | B (input 1) | dense, ``out_in`` with ``transB=1``, else ``in_out`` |
| Conv | W (input 1), 4-D / 3-D | conv2d ``out_in_kh_kw`` (``groups`` from the node) / conv1d ``out_in_k`` |
| Gather | data (input 0), 2-D, ``axis=0`` | embedding, ``out_in`` (rows × dim) |
| MatMulInteger / ConvInteger | B / W (input 1), zero point input 3 | as MatMul / Conv |
| QLinearMatMul / QLinearConv | input 3, scale input 4, zero point input 5 | as MatMul / Conv |

"Constant" means an initializer, a ``Constant`` node, or the output of a chain of constant-only
``Cast / Mul / Div / Add / Sub / DequantizeLinear / Identity / Transpose`` nodes: that is how quantised weights
are stored. The chain is folded when the weight is loaded, giving float32 values:

- ``DequantizeLinear(x, s, z; axis)``: w = (x − z)·s, with s, z scalars (per tensor) or 1-D along ``axis``
  (per channel);
- weight-only int8 exports (``Cast(w_q) · scale``): w = float(w_q)·scale, the scale broadcast as stored;
- ``MatMulInteger`` / ``ConvInteger``: w = (B − z_B)·s_B, where s_B is the constant factor of the ``Mul`` that
  rescales the node's (cast) output (ONNX Runtime's dynamic quantisation); without one the integer levels
  (B − z_B) are returned and a warning says so (α and the shape of the ESD are scale-free, norms are not);
- ``QLinearMatMul`` / ``QLinearConv``: w = (B − z_B)·s_B, s_B scalar or per output channel.

``quant`` names the stored integer type and granularity (``"int8 per-channel"``); ``dtype`` is the stored type.
Initializers of two or more dimensions that no such node consumes are listed, skipped with the reason. 1-D
initializers (biases, norm scales) are not layers, as in WeightWatcher.

Names: an initializer named like a module path (``encoder.layer.0.query.weight``) keeps it; an exporter's
opaque name (``onnx::MatMul_470``, ``val_49``) is replaced by the consuming node's path
(``/encoder/layer.0/query/MatMul`` → ``encoder.layer.0.query``) when the node has one, else by the path of the
bias its output is added to (``encoder.layer.0.query.bias`` → ``encoder.layer.0.query``; torch's dynamo
exporter keeps bias names but not weight names). ``key`` is always the
name of the constant in the graph. ``layer_id`` counts the weights from 1 in graph (execution) order.

Lazy: the graph is listed without reading the weights' bytes (``onnx_wire.read_graph`` walks the protobuf and
keeps each initializer's ``raw_data`` offset), and ``load`` reads one initializer from the file. External data
(``data_location = EXTERNAL``) is read lazily from the file its ``location`` names, which must be a relative
path inside the model's folder; offset and length are checked against that file's size. ``Constant`` nodes'
tensors and typed (not raw) initializer data are parsed with the graph.
Every failure is an ``hts.ModelFileError`` naming the file and the tensor.
"""

from __future__ import annotations

import logging
import os
import re

import numpy as np

from ..errors import ModelFileError
from . import limits
from .base import WeightTensor

__all__ = ["from_onnx"]

logger = logging.getLogger("hts")

#: ONNX TensorProto.DataType -> numpy dtype (the types this reader loads).
_DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32, 7: np.int64,
           9: np.bool_, 10: np.float16, 11: np.float64, 12: np.uint32, 13: np.uint64}
_BF16 = 16
_FOLDABLE = {"Cast", "Mul", "Div", "Add", "Sub", "DequantizeLinear", "Identity", "Transpose"}
_OPAQUE = re.compile(r"^(onnx::|val_\d|_v_\d|\d)|^[A-Za-z]+_\d+$")
_MAX_DEPTH = 16
_MAX_DIMS = 32  # numpy broadcasts at most 32 dimensions; no weight has more than a handful


def _import_onnx(path: str):
    try:
        import onnx
    except ImportError:
        raise ModelFileError(path, "reading ONNX needs the 'onnx' package: pip install 'hts[onnx]'") from None
    return onnx


def from_onnx(path: str | os.PathLike) -> list[WeightTensor]:
    """The weight tensors of an ONNX model file (see the module docstring)."""
    path = os.fspath(path)
    _import_onnx(path)
    from .onnx_wire import read_graph

    proto, spans = read_graph(path)
    try:
        count = len(proto.initializer) + sum(n.op_type == "Constant" for n in proto.node)
        if count > limits.MAX_TENSORS:
            raise ModelFileError(path, f"{count} constant tensors: more than the {limits.MAX_TENSORS} a file may hold")
        graph = _Graph(path, proto, spans)
        tensors = graph.weights()
    except ModelFileError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, UnicodeError) as err:
        # protobuf accepts some damage that leaves the graph inconsistent (e.g. a name that is not UTF-8 comes
        # back as bytes); whatever it is, it is this file's fault
        raise ModelFileError(path, f"malformed ONNX graph ({type(err).__name__}: {str(err)[:200]})") from None
    if not tensors:
        raise ModelFileError(path, "the ONNX graph holds no weight tensors")
    return tensors


class _Graph:
    def __init__(self, path: str, graph, spans: dict) -> None:
        self.path = path
        self.folder = os.path.dirname(os.path.abspath(path))
        self.nodes = list(graph.node)
        self.consts = {t.name: t for t in graph.initializer}
        self.raw = dict(spans)  # initializer name -> (offset, length) of its raw_data in the file
        for node in self.nodes:
            if node.op_type == "Constant" and node.output:
                for a in node.attribute:
                    if a.name == "value" and a.HasField("t"):
                        self.consts[node.output[0]] = a.t
                        self.raw.pop(node.output[0], None)
        self.producer = {o: n for n in self.nodes for o in n.output if o}
        self.consumers: dict[str, list] = {}
        for n in self.nodes:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        # a folded value may be no larger than the largest stored constant whose data is really there
        self.limit = max([min(_count(t.dims), self.raw[n][1] if n in self.raw else _present(t))
                          for n, t in self.consts.items()] + [1])
        self._shapes: dict[str, tuple] = {}
        self.depth = self._const_depths()
        self._roots: dict[str, tuple] = {}

    # --- structure -------------------------------------------------------------------------------------------
    def _const_depths(self) -> dict:
        """name -> length of the longest chain of foldable nodes computing it from stored constants (0 for a
        stored one), for every name within ``_MAX_DEPTH`` of them. Computed pass by pass over the node list
        (one pass for a topologically sorted graph), so cycles never resolve and a DAG whose paths multiply
        costs one visit per node."""
        depth = dict.fromkeys(self.consts, 0)
        foldable = [n for n in self.nodes if n.op_type in _FOLDABLE and n.output and n.output[0]
                    and n.output[0] not in self.consts and self.producer.get(n.output[0]) is n]
        for _ in range(_MAX_DEPTH + 1):
            changed = False
            for n in foldable:
                ins = [i for i in n.input if i]
                if n.output[0] in depth or not ins or not all(i in depth for i in ins):
                    continue
                d = 1 + max(depth[i] for i in ins)
                if d <= _MAX_DEPTH:
                    depth[n.output[0]] = d
                    changed = True
            if not changed:
                break
        return depth

    def is_const(self, name: str) -> bool:
        return bool(name) and name in self.depth

    def roots(self, name: str) -> list:
        """The stored constants a folded constant is computed from (each once)."""
        if name not in self._roots:
            if name in self.consts:
                found = (name,)
            elif name in self.depth:
                found = tuple(dict.fromkeys(r for i in self.producer[name].input if i for r in self._root_names(i)))
            else:
                found = ()
            self._roots[name] = found
        return [self.consts[r] for r in self._roots[name]]

    def _root_names(self, name: str) -> tuple:
        self.roots(name)
        return self._roots[name]

    def shape(self, name: str, depth: int = 0) -> tuple:
        if name in self._shapes:
            return self._shapes[name]
        if name in self.consts:
            shape = tuple(int(d) for d in self.consts[name].dims)
            if len(shape) > _MAX_DIMS:
                raise ModelFileError(self.path, f"{len(shape)} dimensions (more than {_MAX_DIMS})", tensor=name)
            _check_size(self.path, name, shape)
        else:
            node = self.producer[name]
            ins = [self.shape(i, depth + 1) for i in node.input[:1 if node.op_type == "DequantizeLinear" else None]
                   if i]
            if node.op_type == "Transpose":
                perm = _attr(node, "perm", list(range(len(ins[0])))[::-1])
                if sorted(perm) != list(range(len(ins[0]))):
                    raise ModelFileError(self.path, f"Transpose {node.name!r} has a bad perm {list(perm)}",
                                         tensor=name)
                shape = tuple(ins[0][p] for p in perm)
            else:
                try:
                    shape = tuple(np.broadcast_shapes(*ins))
                except (ValueError, RuntimeError):  # RuntimeError: more than 32 dimensions
                    raise ModelFileError(self.path, f"node {node.name or node.op_type!r}: operands of shapes "
                                                    f"{ins} do not broadcast", tensor=name) from None
        if any(d < 0 for d in shape):
            raise ModelFileError(self.path, f"negative dimension in shape {shape}", tensor=name)
        self._shapes[name] = shape
        return shape

    def weights(self) -> list[WeightTensor]:
        out = []
        used = set()
        for node in self.nodes:
            found = self._weight_of(node)
            if found is None:
                continue
            wname, ltype, orient, extra = found
            if wname in used:  # a tied weight consumed twice: listed once, at its first use
                continue
            used.add(wname)
            out.append(self._record(len(out) + 1, node, wname, ltype, orient, extra))
        stored = {r.name for u in used for r in self.roots(u)}
        for name, t in self.consts.items():
            if name in used or name in stored or len(t.dims) < 2:
                continue
            if name in self.consumers:
                reason = "not the weight operand of a MatMul/Gemm/Conv/Gather node"
            else:
                reason = "not used by any node of the graph"
            out.append(WeightTensor(layer_id=len(out) + 1, name=name.rsplit(".", 1)[-1], longname=name, key=name,
                                    layer_type="unknown", shape=tuple(int(d) for d in t.dims),
                                    dtype=_dtype_name(t.data_type), orientation="matrix",
                                    load=lambda n=name: self.load_const(n), skip_reason=reason, source="onnx"))
        return out

    def _weight_of(self, node):
        op, ins = node.op_type, list(node.input)

        def const(i):
            return i < len(ins) and self.is_const(ins[i])

        if op == "MatMul" and len(ins) == 2:
            if const(1):
                return ins[1], "dense", "in_out", None
            if const(0):
                return ins[0], "dense", "out_in", None
        elif op == "Gemm" and const(1):
            return ins[1], "dense", "out_in" if _attr(node, "transB", 0) else "in_out", None
        elif op in ("Conv", "ConvInteger", "QLinearConv"):
            w = 3 if op == "QLinearConv" else 1
            if const(w):
                nd = len(self.shape(ins[w]))
                ltype, orient = {4: ("conv2d", "out_in_kh_kw"), 3: ("conv1d", "out_in_k")}.get(nd, ("unknown", ""))
                return ins[w], ltype, orient, node if op != "Conv" else None
        elif op == "Gather" and const(0) and _attr(node, "axis", 0) == 0 and len(self.shape(ins[0])) == 2:
            return ins[0], "embedding", "out_in", None
        elif op in ("MatMulInteger", "QLinearMatMul"):
            w = 3 if op == "QLinearMatMul" else 1
            if const(w):
                return ins[w], "dense", "in_out", node
        return None

    def _record(self, layer_id, node, wname, ltype, orient, qnode) -> WeightTensor:
        shape = self.shape(wname)
        roots = self.roots(wname)
        stored = max(roots, key=lambda t: _count(t.dims)) if roots else None
        dtype = _dtype_name(stored.data_type) if stored is not None else "float32"
        quant = ""
        if dtype.startswith(("int", "uint")):
            scales = [r for r in roots if r is not stored and _count(r.dims) > 1]
            if qnode is not None:
                scales += [s for s in self._qscale_names(qnode) if s in self.consts and _count(self.consts[s].dims) > 1]
            quant = f"{dtype} {'per-channel' if scales else 'per-tensor'}"
        groups = int(_attr(node, "group", 1)) if ltype == "conv2d" else 0
        skip = ""
        if ltype == "unknown":
            skip = f"{len(shape)}-D operand of {node.op_type}: not a weight matrix"
        elif ltype == "dense" and len(shape) != 2:
            skip = f"{len(shape)}-D constant operand of {node.op_type} (a batched product), not a weight matrix"
        longname = _layer_name(wname, stored.name if stored is not None else wname, node)
        if longname == wname and _OPAQUE.search(wname):
            longname = self._bias_path(node) or longname
        return WeightTensor(layer_id=layer_id, name=longname.rsplit(".", 1)[-1], longname=longname, key=wname,
                            layer_type=ltype, shape=shape, dtype=dtype, orientation=orient or "matrix",
                            load=lambda: self.load_weight(wname, qnode), skip_reason=skip, source="onnx",
                            groups=groups, quant=quant)

    # --- data ------------------------------------------------------------------------------------------------
    def load_weight(self, wname: str, qnode) -> np.ndarray:
        try:
            with np.errstate(all="ignore"):  # overflowing scales give inf, as the runtime would
                return self._load_weight(wname, qnode)
        except ModelFileError:
            raise
        except (ValueError, TypeError, IndexError, ZeroDivisionError, FloatingPointError) as err:
            raise ModelFileError(self.path, f"cannot compute the weight: {err}", tensor=wname) from None

    def _load_weight(self, wname: str, qnode) -> np.ndarray:
        w = self.evaluate(wname)
        if qnode is not None:
            w = self._dequantise_node(qnode, wname, w)
        if w.dtype.kind in "iub":
            w = w.astype(np.float32)
        if w.shape != self.shape(wname):
            raise ValueError(f"folded to shape {w.shape}, expected {self.shape(wname)}")
        return w

    def _bias_path(self, node) -> str:
        """The module path from the bias a MatMul/Gemm output is added to ('' when there is none): a dynamo
        export names weights ``val_49`` but keeps ``encoder.layer.0.query.bias``, so the weight is
        ``encoder.layer.0.query``. Gemm: its C input; MatMul: the one Add its output (through Cast / Mul,
        as dynamic quantisation rescales it) goes to, whose other operand is a constant named ``*.bias``."""
        if node is None or not node.output:
            return ""
        candidates = []
        if node.op_type == "Gemm" and len(node.input) > 2:
            candidates.append(node.input[2])
        else:
            cur = node.output[0]
            for _ in range(3):
                nxt = self.consumers.get(cur, [])
                if len(nxt) != 1:
                    break
                n = nxt[0]
                if n.op_type == "Add":
                    candidates += [i for i in n.input if i != cur]
                    break
                if n.op_type not in ("Cast", "Mul") or not n.output:
                    break
                cur = n.output[0]
        for name in candidates:
            if name in self.consts and name.endswith(".bias") and not _OPAQUE.search(name):
                return name.removesuffix(".bias")
        return ""

    def _qscale_names(self, node) -> list:
        ins = list(node.input)
        if node.op_type in ("QLinearMatMul", "QLinearConv"):
            return [ins[4]] if len(ins) > 4 else []
        s = self._downstream_scale(node)
        return [s] if s else []

    def _downstream_scale(self, node) -> str:
        """The constant factor of the Mul rescaling a MatMulInteger/ConvInteger output ('' when none)."""
        cur = node.output[0] if node.output else ""
        for _ in range(3):
            nxt = self.consumers.get(cur, [])
            if len(nxt) != 1:
                return ""
            n = nxt[0]
            if n.op_type == "Cast":
                cur = n.output[0]
                continue
            if n.op_type != "Mul":
                return ""
            other = [i for i in n.input if i != cur]
            if len(other) != 1:
                return ""
            if self.is_const(other[0]):
                return other[0]
            p = self.producer.get(other[0])
            if p is not None and p.op_type == "Mul":
                cs = [i for i in p.input if self.is_const(i)]
                return cs[0] if len(cs) == 1 else ""
            return ""
        return ""

    def _dequantise_node(self, node, wname: str, w: np.ndarray) -> np.ndarray:
        ins = list(node.input)
        op = node.op_type
        zp_i = 5 if op.startswith("QLinear") else 3
        conv = "Conv" in op
        z = self.evaluate(ins[zp_i]) if len(ins) > zp_i and ins[zp_i] else np.zeros((), np.int32)
        z = _per_channel(z.astype(np.float32), w.ndim, conv)
        _same_shape(w, z)
        w = w.astype(np.float32) - z
        sname = self._qscale_names(node)
        if sname:
            s = _per_channel(self.evaluate(sname[0]).astype(np.float32), w.ndim, conv)
            _same_shape(w, s)
            return w * s
        logger.warning("%s: %s %r: no weight scale found; analysing the integer levels (B - zero point)",
                       self.path, op, wname)
        return w

    def evaluate(self, name: str, memo: dict | None = None) -> np.ndarray:
        """The value of a constant (stored, or folded from stored ones; each name computed once per call)."""
        memo = {} if memo is None else memo
        if name in memo:
            return memo[name]
        if name in self.consts:
            memo[name] = self.load_const(name)
            return memo[name]
        if name not in self.depth:
            raise ValueError(f"operand {name!r} is not a constant of the graph")
        node = self.producer[name]
        op = node.op_type
        args = [self.evaluate(i, memo) if i else None for i in node.input]
        memo[name] = self._fold(node, op, args)
        return memo[name]

    def _fold(self, node, op: str, args: list) -> np.ndarray:
        if op in ("Mul", "Div", "Add", "Sub"):
            shape = np.broadcast_shapes(args[0].shape, args[1].shape)
            if _count(shape) > self.limit:
                raise ValueError(f"{op} would broadcast to {shape}, larger than any stored tensor")
            with np.errstate(all="ignore"):
                return {"Mul": np.multiply, "Div": np.true_divide, "Add": np.add, "Sub": np.subtract}[op](*args[:2])
        if op == "Identity":
            return args[0]
        if op == "Transpose":
            return np.transpose(args[0], _attr(node, "perm", None))
        if op == "Cast":
            to = _attr(node, "to", 1)
            if to not in _DTYPES:
                raise ValueError(f"Cast to ONNX type {to} is not supported")
            return args[0].astype(_DTYPES[to])
        if op == "DequantizeLinear":
            x, s = args[0], args[1].astype(np.float32)
            z = args[2] if len(args) > 2 and args[2] is not None else np.zeros((), np.int32)
            axis = _attr(node, "axis", 1)
            block = _attr(node, "block_size", 0)
            if block and s.ndim == x.ndim:
                ax = axis % x.ndim
                want = tuple(-(-d // block) if i == ax else d for i, d in enumerate(x.shape))
                if block < 1 or s.shape != want or z.ndim and z.shape != want:
                    raise ValueError(f"DequantizeLinear blocks of {block} along axis {axis}: scale of shape "
                                     f"{s.shape} for data of shape {x.shape}")
                index = np.arange(x.shape[ax]) // block  # each element's block, never more than x holds
                s = np.take(s, index, axis=ax)
                z = np.take(z, index, axis=ax) if z.ndim else z
            elif s.ndim == 1 and x.ndim > 0:
                ax = axis % x.ndim
                if s.shape[0] != x.shape[ax]:
                    raise ValueError(f"DequantizeLinear scale of {s.shape[0]} values for axis {axis} of size "
                                     f"{x.shape[ax]}")
                shp = [1] * x.ndim
                shp[ax] = -1
                s = s.reshape(shp)
                z = z.reshape(shp) if z.ndim == 1 else z
            elif s.size != 1:
                raise ValueError(f"DequantizeLinear scale of shape {s.shape} for data of shape {x.shape}")
            _same_shape(x, s, z)
            return (x.astype(np.float32) - z.astype(np.float32)) * s
        raise ValueError(f"cannot fold node type {op}")

    def load_const(self, name: str) -> np.ndarray:
        t = self.consts[name]
        shape = tuple(int(d) for d in t.dims)
        if any(d < 0 for d in shape):
            raise ModelFileError(self.path, f"negative dimension in {shape}", tensor=name)
        _check_size(self.path, name, shape)
        if t.data_type == _BF16:
            dt, out_fn = np.dtype(np.uint16), _bf16
        elif t.data_type in _DTYPES:
            dt, out_fn = np.dtype(_DTYPES[t.data_type]), None
        else:
            raise ModelFileError(self.path, f"ONNX data type {_dtype_name(t.data_type)} is not supported", tensor=name)
        nbytes = _count(shape) * dt.itemsize
        if t.data_location == 1:
            arr = self._read_external(t, name, dt, nbytes)
        elif name in self.raw:
            arr = self._read_raw(name, dt, nbytes, shape)
        elif t.HasField("raw_data"):
            if len(t.raw_data) != nbytes:
                raise ModelFileError(self.path, f"raw data holds {len(t.raw_data)} bytes, the shape {shape} needs "
                                                f"{nbytes}", tensor=name)
            arr = np.frombuffer(t.raw_data, dtype=dt.newbyteorder("<")).astype(dt)
        else:
            from onnx import numpy_helper

            try:
                arr = np.asarray(numpy_helper.to_array(t)).reshape(-1)
            except (ValueError, TypeError) as err:
                raise ModelFileError(self.path, f"cannot decode the tensor: {err}", tensor=name) from None
            if arr.size != _count(shape):
                raise ModelFileError(self.path, f"holds {arr.size} values, the shape {shape} needs {_count(shape)}",
                                     tensor=name)
        arr = arr.reshape(shape)
        return out_fn(arr) if out_fn else arr

    def _read_raw(self, name: str, dt, nbytes: int, shape: tuple) -> np.ndarray:
        """An initializer's raw_data, read from the model file where the listing found it."""
        offset, length = self.raw[name]
        if length != nbytes:
            raise ModelFileError(self.path, f"raw data holds {length} bytes, the shape {shape} needs {nbytes}",
                                 tensor=name)
        out = np.empty(nbytes // dt.itemsize, dtype=dt.newbyteorder("<"))
        try:
            with open(self.path, "rb") as f:
                f.seek(offset)
                got = f.readinto(memoryview(out).cast("B"))
        except OSError as err:
            raise ModelFileError(self.path, f"cannot read: {err.strerror or err}", tensor=name) from None
        if got != nbytes:
            raise ModelFileError(self.path, f"truncated since it was listed: expected {nbytes} bytes, got {got}",
                                 tensor=name)
        return out.astype(dt, copy=False)

    def _read_external(self, t, name: str, dt, nbytes: int) -> np.ndarray:
        info = {e.key: e.value for e in t.external_data}
        loc = info.get("location", "")
        if not loc or os.path.isabs(loc) or ".." in loc.replace("\\", "/").split("/"):
            raise ModelFileError(self.path, f"external data location {loc!r} is not a relative path inside the "
                                            "model's folder", tensor=name)
        file = os.path.join(self.folder, loc)
        try:
            offset = int(info.get("offset", "0"))
            length = int(info.get("length", str(nbytes)))
        except ValueError:
            raise ModelFileError(self.path, f"external data offset/length not integers: {info}", tensor=name) from None
        if length != nbytes or offset < 0:
            raise ModelFileError(self.path, f"external data of {length} bytes at offset {offset}; the shape needs "
                                            f"{nbytes}", tensor=name)
        if not os.path.isfile(file):  # a folder, a FIFO (opening it would block) or nothing
            raise ModelFileError(self.path, f"external data file {loc!r} is missing or not a regular file",
                                 tensor=name)
        try:
            with open(file, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if offset + length > size:
                    raise ModelFileError(self.path, f"external data file {loc!r} of {size} bytes is too short for "
                                                    f"{length} bytes at offset {offset}", tensor=name)
                f.seek(offset)
                out = np.empty(nbytes // dt.itemsize, dtype=dt)
                got = f.readinto(memoryview(out).cast("B"))
        except OSError as err:
            raise ModelFileError(self.path, f"cannot read external data file {loc!r}: {err.strerror or err}",
                                 tensor=name) from None
        if got != nbytes:
            raise ModelFileError(self.path, f"external data file {loc!r} truncated: expected {nbytes} bytes, got {got}",
                                 tensor=name)
        return out


def _check_size(path: str, name: str, shape: tuple) -> None:
    """Refuse a shape numpy cannot even describe: dims whose product (zeros counted as 1) reaches 2^60."""
    n = 1
    for d in shape:
        n *= max(d, 1)
    if n >= 2**60:
        raise ModelFileError(path, f"shape {shape} is too large for any array", tensor=name)


def _same_shape(x: np.ndarray, *operands: np.ndarray) -> None:
    """Refuse scales / zero points that would broadcast the weight to a larger shape."""
    try:
        shape = np.broadcast_shapes(x.shape, *(o.shape for o in operands))
    except (ValueError, RuntimeError):  # RuntimeError: more than 32 dimensions
        shape = None
    if shape != x.shape:
        raise ValueError(f"scale / zero point of shapes {[o.shape for o in operands]} do not fit data of shape "
                         f"{x.shape}")


def _present(t) -> int:
    """How many bytes (or typed values) of data a TensorProto really carries: a bound on its element count."""
    if t.data_location == 1:
        for e in t.external_data:
            if e.key == "length":
                return int(e.value) if e.value.isdigit() else 0
        return 2**62  # the whole rest of the external file; checked when read
    if t.HasField("raw_data"):
        return len(t.raw_data)
    return max(len(t.float_data), len(t.int32_data), len(t.int64_data), len(t.double_data), len(t.uint64_data))


def _per_channel(v: np.ndarray, ndim: int, conv: bool) -> np.ndarray:
    """A scale/zero point: scalar as is; 1-D along the output channels (axis 0 for Conv, last for MatMul)."""
    if v.size == 1:
        return v.reshape(())
    if v.ndim != 1:
        return v
    shp = [1] * ndim
    shp[0 if conv else -1] = -1
    return v.reshape(shp)


def _bf16(raw: np.ndarray) -> np.ndarray:
    return (raw.astype(np.uint32) << 16).view(np.float32)


def _count(dims) -> int:
    n = 1
    for d in dims:
        n *= max(int(d), 0)
    return n


def _attr(node, name: str, default):
    for a in node.attribute:
        if a.name == name:
            from onnx import helper

            return helper.get_attribute_value(a)
    return default


def _dtype_name(code: int) -> str:
    if code == _BF16:
        return "bfloat16"
    if code in _DTYPES:
        return np.dtype(_DTYPES[code]).name
    try:
        from onnx import TensorProto

        return TensorProto.DataType.Name(code).lower()
    except ValueError:
        return f"onnx-type-{code}"


def _layer_name(wname: str, stored: str, node) -> str:
    for cand in (wname, stored):
        if not _OPAQUE.search(cand) and "." in cand:
            base = re.sub(r"(_q|_quantized|_scale)$", "", cand)
            return base.removesuffix(".weight")
    if node is not None and "/" in node.name:
        parts = [p for p in node.name.split("/") if p]
        if len(parts) > 1:
            return ".".join(parts[:-1])
    return wname
