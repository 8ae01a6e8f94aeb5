"""Annotate: which calls of `main` become int8 layers, and what each is called.

A layer is a conv2d (NCHW, OIHW, one group), a depthwise conv2d (a group per channel, one
output channel each) or a matmul whose weight is a float32 constant and whose input has a
static float32 shape (a float16 model rounds differently from the kernel's float32 epilogue, so
it keeps its own arithmetic). Other grouped convolutions stay float32. Layers are named after
their ONNX node where the model's Conv/MatMul/Gemm nodes with constant weights line up one to
one with the layers found, else `conv2d_3`, `matmul_7`: the names the report prints and
`skip` accepts.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx
from tvm import relax

from ..consts import dtype, is_constant, static_shape, value

WEIGHTED_ONNX_OPS = ("Conv", "MatMul", "Gemm")


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str  # conv2d | depthwise | matmul
    call: relax.Call
    var: relax.Var  # what the call is bound to


def find_layers(func: relax.Function, onnx_names: list[str] | None = None) -> list[Layer]:
    found = [(b.var, b.value) for block in func.body.blocks for b in block.bindings
             if isinstance(b.value, relax.Call) and _kind(b.value)]  # fmt: skip
    counts: dict[str, int] = {}
    layers = []
    for var, call in found:
        kind = _kind(call)
        layers.append(Layer(f"{kind}_{counts.get(kind, 0)}", kind, call, var))
        counts[kind] = counts.get(kind, 0) + 1
    if onnx_names is not None and len(onnx_names) == len(layers):
        layers = [
            Layer(n, la.kind, la.call, la.var) for n, la in zip(onnx_names, layers, strict=True)
        ]
    return layers


def _kind(call: relax.Call) -> str | None:
    op = getattr(call.op, "name", None)
    if op == "relax.nn.conv2d" and _quantizable_conv(call):
        return "conv2d" if int(call.attrs.groups) == 1 else "depthwise"
    if op == "relax.matmul" and _quantizable_matmul(call):
        return "matmul"
    return None


def _weight_and_input_ok(call: relax.Call, weight_rank: int) -> bool:
    x, weight = call.args
    return (
        is_constant(weight) and dtype(weight) == "float32" and value(weight).ndim == weight_rank
        and dtype(x) == "float32" and static_shape(x) is not None
        and static_shape(call) is not None
    )  # fmt: skip


def _quantizable_conv(call: relax.Call) -> bool:
    attrs = call.attrs
    layouts = (str(attrs.data_layout), str(attrs.kernel_layout), str(attrs.out_layout))
    if layouts != ("NCHW", "OIHW", "NCHW") or not _weight_and_input_ok(call, 4):
        return False
    groups, (out_channels, group_channels) = int(attrs.groups), value(call.args[1]).shape[:2]
    return groups == 1 or (group_channels == 1 and groups == out_channels)


def _quantizable_matmul(call: relax.Call) -> bool:
    return _weight_and_input_ok(call, 2) and len(static_shape(call.args[0])) >= 1


def onnx_layer_names(model: onnx.ModelProto) -> list[str]:
    """Conv/MatMul/Gemm nodes whose weight is an initializer, in graph order; unnamed nodes get
    their first output's name."""
    initializers = {init.name for init in model.graph.initializer}
    return [
        node.name or node.output[0]
        for node in model.graph.node
        if node.op_type in WEIGHTED_ONNX_OPS and len(node.input) > 1
        and node.input[1] in initializers
    ]  # fmt: skip
