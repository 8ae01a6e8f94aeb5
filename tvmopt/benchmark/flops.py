"""Count the floating-point work of a model: 2 x multiply-accumulates of Conv, Gemm and MatMul,
the ops that dominate; element-wise work is left out, as is usual for GFLOP/s figures."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import shape_inference

from ..frontend.signature import static_shapes


def count_flops(model: onnx.ModelProto) -> int:
    inferred = shape_inference.infer_shapes(model)
    shapes = static_shapes(inferred.graph)
    return sum(_node_flops(node, shapes) for node in inferred.graph.node)


def _node_flops(node: onnx.NodeProto, shapes: dict) -> int:
    counter = _COUNTERS.get(node.op_type)
    known = [shapes.get(name) for name in (*node.input[:2], node.output[0])]
    if counter is None or any(shape is None for shape in known):
        return 0
    return counter(node, *known)


def _conv(node, x, w, y) -> int:
    return 2 * int(np.prod(y)) * int(np.prod(w[1:]))  # each output sums Cin/groups * kh * kw


def _matmul(node, a, b, y) -> int:
    return 2 * int(np.prod(y)) * (a[-1] if a else 1)


def _gemm(node, a, b, y) -> int:
    trans_a = any(attr.name == "transA" and attr.i for attr in node.attribute)
    return 2 * int(np.prod(y)) * (a[0] if trans_a else a[-1])


_COUNTERS = {"Conv": _conv, "MatMul": _matmul, "Gemm": _gemm}
