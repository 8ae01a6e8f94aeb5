"""Quantized ONNX operators (the QOperator format) rewritten as standard ops TVM imports.

    QLinearConv(x, xs, xz, w, ws, wz, ys, yz[, B]) -> Q(Conv(DQ(x), DQ(w), DQ(B)), ys, yz)
    QLinearMatMul(a, as, az, b, bs, bz, ys, yz)    -> Q(MatMul(DQ(a), DQ(b)), ys, yz)
    ConvInteger(x, w[, xz, wz])   -> Cast(Conv(double(x) - xz, double(w) - wz), int32)
    MatMulInteger(a, b[, az, bz]) -> Cast(MatMul(double(a) - az, double(b) - bz), int32)

The QLinear forms become exactly the QDQ pattern our int8 path recognizes (passes/quantize/
qdq.py), so they run on the same int8 kernels. The bias of QLinearConv is int32 at scale
xs * ws with zero point 0, which is what DequantizeLinear computes. The Integer forms have no
output scale to requantize with; they compute in float64, where every int32 sum of 8-bit
products is exact (float32 would round above 2^24). Runs before constant folding, which then
folds the weights' DequantizeLinear back into float weights.

Scales of 16-bit floats are cast to float32 first, so the QLinear forms requantize in float32,
as ONNX Runtime and the reference (which scales an int32 product in float64) do: float16 steps
of 0.125 near 255 would round an output a step off.
"""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

QUANTIZED_OPS = ("QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger")


def expand_quantized_ops(model: onnx.ModelProto) -> onnx.ModelProto:
    if not any(node.op_type in QUANTIZED_OPS for node in model.graph.node):
        return model
    model = _copy(model)
    half_floats = _half_float_names(model.graph)
    nodes = []
    for index, node in enumerate(model.graph.node):
        expand = EXPANSIONS.get(node.op_type) if node.domain in ("", "ai.onnx") else None
        prefix = f"{node.name or node.op_type}_{index}"
        if expand and node.op_type in _SCALES:
            casts, node = _scales_to_float32(node, prefix, half_floats)
            nodes += casts
        nodes += expand(node, prefix) if expand else [node]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


# Input positions of the scales of each QLinear op.
_SCALES = {"QLinearConv": (1, 4, 6), "QLinearMatMul": (1, 4, 6)}
_HALF_FLOATS = (TensorProto.FLOAT16, TensorProto.BFLOAT16)


def _half_float_names(graph: onnx.GraphProto) -> set[str]:
    """Names of the graph's tensors of a 16-bit float type whose type the graph states."""
    typed = [*graph.input, *graph.value_info]
    names = {v.name for v in typed if v.type.tensor_type.elem_type in _HALF_FLOATS}
    return names | {t.name for t in graph.initializer if t.data_type in _HALF_FLOATS}


def _scales_to_float32(node, prefix, half_floats):
    """Cast nodes for `node`'s 16-bit float scales, and a copy of `node` that reads the casts."""
    node_copy, casts = onnx.NodeProto(), []
    node_copy.CopyFrom(node)
    for position in _SCALES[node.op_type]:
        scale = node.input[position]
        if scale in half_floats:
            node_copy.input[position] = cast = f"{prefix}_{scale}_f32"
            casts.append(helper.make_node("Cast", [scale], [cast], to=TensorProto.FLOAT))
    return casts, node_copy


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return copy


def _attributes(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _dq(prefix: str, tensor: str, scale: str, zero: str | None, axis: int | None = None):
    inputs = [tensor, scale] + ([zero] if zero else [])
    kwargs = {} if axis is None else {"axis": axis}
    out = f"{prefix}_dq_{tensor}"
    return helper.make_node("DequantizeLinear", inputs, [out], **kwargs), out


def _qlinear_conv(node, prefix):
    x, xs, xz, w, ws, wz, ys, yz, *bias = node.input
    dq_x, x_f = _dq(prefix, x, xs, xz)
    dq_w, w_f = _dq(prefix, w, ws, wz, axis=0)  # per output channel when ws is a vector
    conv_inputs, extra = [x_f, w_f], [dq_x, dq_w]
    if bias and bias[0]:
        bias_scale = f"{prefix}_bias_scale"
        extra.append(helper.make_node("Mul", [xs, ws], [bias_scale]))
        dq_b, b_f = _dq(prefix, bias[0], bias_scale, None, axis=0)
        extra.append(dq_b)
        conv_inputs.append(b_f)
    y_f = f"{prefix}_float"
    conv = helper.make_node("Conv", conv_inputs, [y_f], **_attributes(node))
    quantize = helper.make_node("QuantizeLinear", [y_f, ys, yz], list(node.output))
    return [*extra, conv, quantize]


def _qlinear_matmul(node, prefix):
    a, a_s, az, b, bs, bz, ys, yz = node.input
    dq_a, a_f = _dq(prefix, a, a_s, az)
    dq_b, b_f = _dq(prefix, b, bs, bz, axis=1)  # per output column when bs is a vector
    y_f = f"{prefix}_float"
    matmul = helper.make_node("MatMul", [a_f, b_f], [y_f])
    return [
        dq_a,
        dq_b,
        matmul,
        helper.make_node("QuantizeLinear", [y_f, ys, yz], list(node.output)),
    ]


def _centered_double(prefix: str, tensor: str, zero: str | None, tag: str):
    """double(tensor) - double(zero), as nodes and the result's name."""
    cast = f"{prefix}_{tag}_f64"
    nodes = [helper.make_node("Cast", [tensor], [cast], to=TensorProto.DOUBLE)]
    if not zero:
        return nodes, cast
    zero_cast, centered = f"{prefix}_{tag}_zero_f64", f"{prefix}_{tag}_centered"
    nodes.append(helper.make_node("Cast", [zero], [zero_cast], to=TensorProto.DOUBLE))
    nodes.append(helper.make_node("Sub", [cast, zero_cast], [centered]))
    return nodes, centered


def _integer(op: str):
    def expand(node, prefix):
        a, b, *zeros = list(node.input) + ["", ""]
        a_nodes, a_d = _centered_double(prefix, a, zeros[0], "a")
        b_nodes, b_d = _centered_double(prefix, b, zeros[1], "b")
        if op == "Conv" and zeros[1]:  # a per-output-channel zero point broadcasts over O
            b_nodes[-1:] = _per_channel_sub(prefix, b_nodes[-1], zeros[1])
        y_d = f"{prefix}_f64"
        core = helper.make_node(op, [a_d, b_d], [y_d], **_attributes(node))
        cast = helper.make_node("Cast", [y_d], list(node.output), to=TensorProto.INT32)
        return [*a_nodes, *b_nodes, core, cast]

    return expand


def _per_channel_sub(prefix: str, sub: onnx.NodeProto, zero: str) -> list[onnx.NodeProto]:
    """Reshape the zero point to [O, 1, 1, 1] before subtracting it from a [O, C, KH, KW] weight."""
    shape, reshaped = f"{prefix}_zero_shape", f"{prefix}_zero_oihw"
    oihw = helper.make_tensor(shape, TensorProto.INT64, [4], [-1, 1, 1, 1])
    shape_node = helper.make_node("Constant", [], [shape], value=oihw)
    reshape = helper.make_node("Reshape", [sub.input[1], shape], [reshaped])
    centered = helper.make_node("Sub", [sub.input[0], reshaped], list(sub.output))
    return [shape_node, reshape, centered]


EXPANSIONS = {
    "QLinearConv": _qlinear_conv,
    "QLinearMatMul": _qlinear_matmul,
    "ConvInteger": _integer("Conv"),
    "MatMulInteger": _integer("MatMul"),
}
