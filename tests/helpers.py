"""Shared test helpers: tiny ONNX graphs, and the ONNX Runtime check every compiled model gets."""

from __future__ import annotations

from functools import cache

import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, helper, numpy_helper

from tvmopt.inputs import random_inputs
from tvmopt.reference import FP32_TOLERANCE, max_relative_error


def make_model(
    nodes, inputs, outputs, initializers=(), opset=17, extra_opsets=None
) -> onnx.ModelProto:
    """A checked model from nodes and (name, elem_type, shape) triples for inputs and outputs."""
    graph = helper.make_graph(
        nodes,
        "test_graph",
        [helper.make_tensor_value_info(*spec) for spec in inputs],
        [helper.make_tensor_value_info(*spec) for spec in outputs],
        [numpy_helper.from_array(np.asarray(v), name) for name, v in dict(initializers).items()],
    )
    opsets = {"": opset, **(extra_opsets or {})}
    opset_imports = [helper.make_opsetid(domain, v) for domain, v in opsets.items()]
    # the oldest IR version the opsets allow: an ONNX Runtime older than onnx still reads it
    ir_version = helper.find_min_ir_version_for(opset_imports, ignore_unknown=True)
    model = helper.make_model(graph, opset_imports=opset_imports, ir_version=ir_version)
    onnx.checker.check_model(model)
    return model


def relu_model(shape=(2, 3)) -> onnx.ModelProto:
    return make_model(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")],
        [("x", TensorProto.FLOAT, shape)],
        [("y", TensorProto.FLOAT, shape)],
    )


def ort_outputs(model: onnx.ModelProto, feeds: dict) -> dict[str, np.ndarray]:
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    names = [out.name for out in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))


def assert_matches_ort(model: onnx.ModelProto, compiled, feeds=None, tolerance=FP32_TOLERANCE):
    """Run `compiled` and ONNX Runtime on the same inputs; every output must match."""
    if feeds is None:
        feeds = random_inputs(compiled.inputs, seed=0)
    expected = ort_outputs(model, feeds)
    actual = compiled.run(feeds)
    assert list(actual) == list(expected)
    for name, reference in expected.items():
        error = max_relative_error(actual[name], reference)
        assert error <= tolerance, f"output {name}: error {error:.3g} > {tolerance}"
    return actual


@cache
def gpu_present() -> bool:
    """An NVIDIA GPU that TVM can run on (its driver, TVM's CUDA runtime, a device)."""
    from tvmopt.backends.cuda import gpu_missing

    return gpu_missing() is None
