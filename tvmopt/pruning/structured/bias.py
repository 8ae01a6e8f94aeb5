"""The bias that follows a projection: Add(MatMul(x, W), b) with one constant per output, or a
Gemm's own C. Least-squares pruning with an intercept moves the dropped units' mean output into
it."""

from __future__ import annotations

import numpy as np
import onnx

from .graph import Graph


def find(g: Graph, projection: onnx.NodeProto) -> tuple[onnx.NodeProto, int] | None:
    """(node, input index) of the projection's per-output bias constant, or None."""
    width = g.const(projection.input[1]).shape
    if projection.op_type == "Gemm":
        has_c = len(projection.input) > 2 and g.const(projection.input[2]) is not None
        return (projection, 2) if has_c and g.const(projection.input[2]).size > 1 else None
    add = g.only_consumer(projection.output[0])
    if add is None or add.op_type != "Add":
        return None
    index = 1 - list(add.input).index(projection.output[0])
    value = g.const(add.input[index])
    return (add, index) if value is not None and value.shape == width[-1:] else None


def shift(g: Graph, where: tuple[onnx.NodeProto, int], delta: np.ndarray) -> None:
    node, index = where
    value = g.const(node.input[index])
    g.set_input(node, index, (value + delta.reshape(value.shape)).astype(value.dtype))
