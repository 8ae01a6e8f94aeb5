"""Ops of transformer exports that transformers 5's own exports no longer emit (Trilu, Einsum,
ai.onnx Gelu: older versions and other exporters do), on symbolic batch and sequence dims, in
one graph: a causal mask from Trilu(ConstantOfShape(Shape)), attention scores as an Einsum,
masked with Where, GELU, and the result expanded to the batch."""

import numpy as np
from onnx import TensorProto, helper

import tvmopt

from .helpers import assert_matches_ort, make_model

node = helper.make_node


def causal_einsum_model():
    nodes = [
        node("Shape", ["x"], ["x_shape"], start=1, end=2),
        node("Concat", ["x_shape", "x_shape"], ["square"], axis=0),
        node("ConstantOfShape", ["square"], ["ones"],
             value=helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])),
        node("Trilu", ["ones"], ["lower"], upper=0),
        node("Cast", ["lower"], ["keep"], to=TensorProto.BOOL),
        node("Einsum", ["x", "x"], ["scores"], equation="bsd,btd->bst"),
        node("Where", ["keep", "scores", "minus"], ["masked"]),
        node("Gelu", ["masked"], ["activated"], approximate="tanh"),
        node("Shape", ["activated"], ["full_shape"]),
        node("Expand", ["bias", "full_shape"], ["bias_full"]),
        node("Add", ["activated", "bias_full"], ["y"]),
    ]  # fmt: skip
    constants = {"minus": np.array(-3.0, np.float32), "bias": np.array([0.5], np.float32)}
    dims = ["batch", "seq"]
    return make_model(nodes, [("x", TensorProto.FLOAT, [*dims, 8])],
                      [("y", TensorProto.FLOAT, ["batch", "seq", "seq"])], constants,
                      opset=20)  # fmt: skip


def test_causal_einsum_gelu_on_symbolic_dims_matches_onnxruntime():
    model = causal_einsum_model()
    compiled = tvmopt.compile(model, dims={"batch": "1..3", "seq": "1..16"})
    rng = np.random.default_rng(0)
    for batch, seq in [(1, 1), (2, 5), (3, 16)]:
        feeds = {"x": rng.standard_normal((batch, seq, 8)).astype(np.float32)}
        assert_matches_ort(model, compiled, feeds)
