"""A model that outputs the shape of a symbolic input (TVM's importer computes it as a Relax
shape value) gets it back as the int64 tensor its ONNX signature declares, as ONNX Runtime
returns it, static and symbolic alike."""

import numpy as np
import pytest
from onnx import TensorProto, helper

import tvmopt

from .helpers import assert_matches_ort


def _relu_and_its_shape(batch) -> object:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Shape", ["x"], ["size"])],
        "shape_out", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4]),
         helper.make_tensor_value_info("size", TensorProto.INT64, [2])],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("batch", ["batch", 3])
def test_shape_outputs_are_int64_tensors(batch):
    model = _relu_and_its_shape(batch)
    compiled = tvmopt.compile(model, dims={"batch": (1, 8)} if batch == "batch" else None)
    assert [(s.name, s.shape, s.dtype) for s in compiled.outputs][1] == ("size", (2,), "int64")
    feeds = {"x": np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)}
    assert_matches_ort(model, compiled, feeds)
    assert compiled.run(feeds)["size"].tolist() == [3, 4]
