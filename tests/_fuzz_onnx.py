"""A structure-aware fuzzer for ONNX models (tests/test_fuzz_onnx.py, bench/fuzz_onnx.py).

``hostile_onnx(source)`` builds a ModelProto with ``onnx``'s own message classes: initializers (raw or typed
data, external data in a side file), ``Constant`` nodes, weight-consuming nodes (MatMul, Gemm, Conv, Gather,
MatMulInteger, ConvInteger, QLinearMatMul, QLinearConv) fed by constant chains (DequantizeLinear per tensor /
per channel / blocked, Cast, Mul, Div, Add, Sub, Transpose, Identity). A few fields lie: dims against data
sizes, data types, external locations, offsets and lengths, attribute values (axis, perm, block_size, group,
transB, Cast's ``to``), operand names (missing, empty, cycles, a DAG whose paths multiply), truncation.
Returns ``{"m.onnx": bytes, "m.data": bytes}`` (the side file may be absent).
"""

from __future__ import annotations

import numpy as np

from _fuzz_gguf import U64_EDGES, _Liar

#: ONNX data types the reader loads, and others it must refuse.
TYPES = {1: np.float32, 3: np.int8, 2: np.uint8, 10: np.float16, 11: np.float64, 6: np.int32, 7: np.int64}
HOSTILE_TYPES = [0, 8, 14, 16, 17, 21, 22, 99, 2**31 - 1]
WEIGHT_OPS = ["MatMul", "Gemm", "Conv", "Gather", "MatMulInteger", "ConvInteger", "QLinearMatMul", "QLinearConv"]
CHAIN_OPS = ["DequantizeLinear", "Cast", "Mul", "Div", "Add", "Sub", "Transpose", "Identity"]
NAMES = ["encoder.layer.{i}.query.weight", "onnx::MatMul_{i}", "val_{i}", "w{i}", "conv.{i}.weight",
         "emb.weight", ""]


def _tensor(onnx, liar, draw, name: str, shape: list, code: int, side: bytearray):
    """A TensorProto of ``shape`` (values random), stored raw, typed or external; dims/data may lie."""
    t = onnx.TensorProto()
    t.name = name
    count = int(np.prod(shape)) if shape else 1
    dtype = np.dtype(TYPES.get(code, np.float32))
    values = np.frombuffer(draw.bytes(count * dtype.itemsize), dtype=dtype).copy()
    if dtype.kind == "f":
        values = np.nan_to_num(values, nan=0.5, posinf=1.0, neginf=-1.0)
    t.data_type = liar.pick([code], HOSTILE_TYPES)
    dims = [liar.int(d, 63) if draw.int(0, 1) else d for d in shape]
    if liar.lying():
        dims = draw.pick([[-1, 4], [2**40, 2**40], [0], [1] * 40, [2**62, 0, 2**62]])
    t.dims.extend(dims)
    raw = values.astype(dtype.newbyteorder("<")).tobytes()
    how = liar.pick(["raw", "raw", "typed", "external"], ["raw", "typed", "external"])
    if liar.lying():
        raw = raw[: draw.int(0, len(raw))] if draw.int(0, 1) else raw + draw.bytes(draw.int(1, 8))
    if how == "raw":
        t.raw_data = raw
    elif how == "typed":
        if dtype.kind == "f" and dtype.itemsize == 4:
            t.float_data.extend(values.tolist()[: liar.int(count, 16)])
        elif dtype.kind == "f" and dtype.itemsize == 8:
            t.double_data.extend(values.tolist()[: liar.int(count, 16)])
        elif dtype == np.int64:
            t.int64_data.extend(values.tolist()[: liar.int(count, 16)])
        elif dtype == np.float16:
            t.int32_data.extend(values.view(np.uint16).tolist())
        else:
            t.int32_data.extend(values.astype(np.int32).tolist()[: liar.int(count, 16)])
    else:
        offset = len(side)
        side.extend(raw)
        t.data_location = onnx.TensorProto.EXTERNAL
        loc = liar.pick(["m.data"], ["/etc/hostname", "../m.data", "", "missing.data", "m.data/../m.data", "."])
        entries = [("location", loc), ("offset", str(liar.int(offset))), ("length", str(liar.int(len(raw))))]
        if liar.lying():
            entries[draw.int(1, 2)] = (entries[draw.int(1, 2)][0], draw.pick(["-4", "x", "1e3", "", "0x10"]))
        for k, v in entries:
            e = t.external_data.add()
            e.key, e.value = k, v
    return t


def _attr(onnx, node, name: str, value) -> None:
    kind = onnx.AttributeProto.INTS if isinstance(value, list) else None
    node.attribute.append(onnx.helper.make_attribute(name, value, attr_type=kind))


def hostile_onnx(draw) -> dict:
    """An ONNX model (and its external data file), well-formed except for a few lies."""
    import onnx

    liar = _Liar(draw)
    side = bytearray()
    graph = onnx.GraphProto()
    graph.name = "g"
    consts: list[tuple] = []  # (name, shape, code)
    nodes = []
    n_weights = draw.int(1, 4)

    def const(shape, code, name=""):
        name = name or f"c{len(consts)}"
        t = _tensor(onnx, liar, draw, name, shape, code, side)
        if draw.int(0, 4) == 0:  # a Constant node instead of an initializer
            node = onnx.helper.make_node("Constant", [], [name])
            node.attribute.append(onnx.helper.make_attribute("value", t))
            nodes.append(node)
        else:
            graph.initializer.append(t)
        consts.append((name, shape, code))
        return name

    def node(op, ins, out, **attrs):
        n = onnx.helper.make_node(op, ins, [out])
        for k, v in attrs.items():
            _attr(onnx, n, k, v)
        nodes.append(n)
        return out

    for i in range(n_weights):
        op = draw.pick(WEIGHT_OPS)
        conv = "Conv" in op
        shape = ([draw.pick([2, 4]), draw.pick([1, 2]), draw.pick([1, 3]), draw.pick([1, 3])] if conv
                 else [draw.pick([3, 4, 8]), draw.pick([2, 5, 8])])
        quant = op in ("MatMulInteger", "ConvInteger", "QLinearMatMul", "QLinearConv")
        chain = draw.pick(["none", "none", "dq", "cast_mul", "transpose", "identity", "dag"]) if not quant else "none"
        code = draw.pick([3, 2]) if quant or chain in ("dq", "cast_mul") else draw.pick([1, 1, 10, 11])
        name = draw.pick(NAMES).format(i=i)
        w = const(shape, code, name)
        if chain == "dq":
            ax = liar.pick([1 if not conv else 0], [-1, 5, -9, 2**31 - 1])
            per = draw.int(0, 2)
            block = 0
            if per == 2:
                block = liar.int(2, 31)
                sshape = [shape[0], -(-shape[1] // 2)] + shape[2:]
            else:
                sshape = [shape[ax % len(shape)]] if per == 1 and -len(shape) <= ax < len(shape) else []
            s = const(sshape, 1)
            z = const(sshape, code) if draw.int(0, 1) else ""
            attrs = {"axis": ax} | ({"block_size": block} if block else {})
            w = node("DequantizeLinear", [w, s] + ([z] if z else []), f"dq{i}", **attrs)
        elif chain == "cast_mul":
            c = node("Cast", [w], f"cast{i}", to=liar.pick([1], [8, 0, 99, 16]))
            s = const(liar.pick([[], [shape[-1]], [1, shape[-1]]], [[512, 1, 1], [7], [shape[0], 1, 1, 1]]), 1)
            w = node(draw.pick(["Mul", "Div"]), [c, s], f"scaled{i}")
        elif chain == "transpose":
            perm = liar.pick([list(range(len(shape)))[::-1]], [[0, 0], [5, 1], [], [0, 1, 2, 3, 4]])
            w = node("Transpose", [w], f"tr{i}", perm=perm)
        elif chain == "identity":
            w = node("Identity", [liar.pick([w], ["", "nowhere", f"id{i}"])], f"id{i}")
        elif chain == "dag":  # each level adds the previous one to itself: paths double per level
            for level in range(draw.int(1, 40)):
                w = node(draw.pick(["Add", "Mul"]), [w] * draw.int(2, 6), f"dag{i}_{level}")
        ins = ["x", w]
        attrs: dict = {}
        if op == "Gemm":
            attrs["transB"] = liar.pick([0, 1], [2, -1])
        elif op == "Conv":
            attrs["group"] = liar.pick([1, shape[0]], [0, -3, 2**40])
        elif op == "Gather":
            ins = [w, "x"]
            attrs["axis"] = liar.pick([0], [1, -7])
        elif op in ("MatMulInteger", "ConvInteger"):
            zshape = liar.pick([[], [shape[0] if conv else shape[-1]]], [[9], [2, 2]])
            ins = ["x", w, "", const(zshape, code)]
        elif op in ("QLinearMatMul", "QLinearConv"):
            cshape = [shape[0] if conv else shape[-1]] if draw.int(0, 1) else []
            ins = ["x", "xs", "xz", w, const(liar.pick([cshape], [[5], [2, 3]]), 1), const(cshape, code), "ys", "yz"]
        if liar.lying():
            ins[draw.int(0, len(ins) - 1)] = draw.pick(["", "missing", f"out{i}", w + "_"])
        node(op, ins, f"out{i}", **attrs)
    if liar.lying():  # a cycle through the constant chain
        nodes.append(onnx.helper.make_node("Add", ["loop", "c0"], ["loop"]))
        nodes.append(onnx.helper.make_node("MatMul", ["x", "loop"], ["yl"]))
    graph.node.extend(nodes)
    graph.input.append(onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, None))
    graph.output.append(onnx.helper.make_tensor_value_info("out0", onnx.TensorProto.FLOAT, None))
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 21)])
    model.ir_version = liar.pick([10, 8, 7], [0, 2**40, 99])
    blob = model.SerializeToString()
    if liar.lying() and blob:
        blob = blob[: draw.int(0, len(blob) - 1)]
    files = {"m.onnx": blob}
    if side or draw.int(0, 3) == 0:
        files["m.data"] = bytes(side[: draw.int(0, len(side))] if liar.lying() else side)
    return files


#: Bytes loading may allocate per file byte: int8 -> float32 through float32 temporaries (several of them).
WIDEN = 24.0
EDGES = U64_EDGES
