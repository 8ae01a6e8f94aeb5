"""Reductions that keep the innermost axis (backends/llvm/rule_reduce_outer.py): computed right
against ONNX Runtime, scheduled vectorized over the kept axis, and left to the fallback when the
innermost axis is the one reduced."""

import numpy as np
import pytest
from onnx import TensorProto, helper

import tvmopt

from .helpers import assert_matches_ort, make_model

RNG = np.random.default_rng(0)


def reduce_model(op, shape, axes, keepdims=1):
    node = helper.make_node(op, ["x", "axes"], ["y"], keepdims=keepdims)
    out_rank = len(shape) if keepdims else len(shape) - len(axes)
    return make_model(
        [node],
        [("x", TensorProto.FLOAT, list(shape))],
        [("y", TensorProto.FLOAT, [f"d{i}" for i in range(out_rank)])],
        {"axes": np.array(axes, np.int64)},
        opset=18,
    )


def rules_of(compiled) -> set[str]:
    return {record["rule"] for record in compiled.metadata.extra["kernels"].values()}


@pytest.mark.parametrize(
    "op, shape, axes, keepdims",
    [
        ("ReduceMean", (1, 16, 16, 24), [1, 2], 1),  # a global average pool channels last
        ("ReduceMean", (2, 7, 7, 20), [1, 2], 0),  # channels not a multiple of the lanes
        ("ReduceSum", (64, 48), [0], 1),  # a sum over a matrix's rows
        ("ReduceMax", (3, 50, 32), [1], 0),  # -inf identity (passes/infinite_extrema.py)
        ("ReduceMin", (5, 9, 33), [0, 1], 1),
    ],
)
def test_reductions_keeping_the_innermost_axis_vectorize_it(op, shape, axes, keepdims):
    model = reduce_model(op, shape, axes, keepdims)
    compiled = tvmopt.compile(model)
    assert "ReduceOuterAxes" in rules_of(compiled)
    feeds = {"x": RNG.standard_normal(shape).astype(np.float32)}
    assert_matches_ort(model, compiled, feeds)


def test_a_reduction_over_the_innermost_axis_is_left_to_the_fallback():
    model = reduce_model("ReduceMean", (1, 16, 16, 24), [3])
    compiled = tvmopt.compile(model)
    assert "ReduceOuterAxes" not in rules_of(compiled)
    assert_matches_ort(
        model, compiled, {"x": RNG.standard_normal((1, 16, 16, 24)).astype(np.float32)}
    )
