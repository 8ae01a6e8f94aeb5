"""Fold reductions of empty tensors into the constants they are.

    ReduceSum(x: float[2, 0, 4], axes=[1]) -> Constant(zeros[2, 1, 4])
    ReduceMax(x: float[2, 0, 4], axes=[1]) -> Constant(full[2, 1, 4], -inf)

A reduction over a zero-size axis yields its identity (0 for a sum, 1 for a product, -inf for a
max or a log-sum...). TVM's reductions set their output in the first step of their loop, which
never runs over an empty axis: the output was uninitialized memory. An empty input carries no
data, so the output depends only on its shape and dtype and the node's attributes and axes:
onnx's reference implementation (the executable spec) computes it here on a zero-size array.

Runs after input shapes are pinned and inferred, and after function expansion (an expanded
ReduceLogSumExp is a ReduceSum inside), before constant folding, which then carries the constant
on to the nodes that read it.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from .constant_slots import REDUCTIONS
from .signature import static_shapes


def fold_empty_reductions(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` with every reduction of a statically empty tensor replaced by a Constant."""
    graph = model.graph
    shapes, elem_types = static_shapes(graph), _elem_types(graph)
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    opsets = {o.domain or "": o.version for o in model.opset_import}
    folded = []
    for node in graph.node:
        empty = _empty_input(node, shapes, elem_types)
        value = None if empty is None else _reduced(node, empty, constants, opsets)
        folded.append(node if value is None else _constant_node(node.output[0], value))
    if folded == list(graph.node):
        return model
    del graph.node[:]
    graph.node.extend(folded)
    return model


def _empty_input(node: onnx.NodeProto, shapes: dict, elem_types: dict) -> np.ndarray | None:
    """The zero-size array a reduction reads, if shape inference proved its input empty."""
    if node.domain not in ("", "ai.onnx") or node.op_type not in REDUCTIONS:
        return None
    shape, elem_type = shapes.get(node.input[0]), elem_types.get(node.input[0])
    if shape is None or 0 not in shape or not elem_type:
        return None
    return np.zeros(shape, helper.tensor_dtype_to_np_dtype(elem_type))


def _reduced(node, empty: np.ndarray, constants: dict, opsets: dict) -> np.ndarray | None:
    axes = node.input[1] if len(node.input) > 1 and node.input[1] else None
    if axes is not None and axes not in constants:
        return None  # axes known only at run time: the output shape is not known here
    feeds = {node.input[0]: empty, **({axes: constants[axes]} if axes else {})}
    (value,) = ReferenceEvaluator(node, opsets=opsets).run(None, feeds)
    # an empty output is left to TVM: it computes nothing, and TVM cannot load an empty constant
    return np.asarray(value) if np.size(value) else None


def _constant_node(name: str, value: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value, name))


def _elem_types(graph: onnx.GraphProto) -> dict[str, int]:
    values = [*graph.input, *graph.value_info, *graph.output]
    return {value.name: value.type.tensor_type.elem_type for value in values}
