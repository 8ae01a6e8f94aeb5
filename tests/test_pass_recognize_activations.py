"""RecognizeActivations: GELU's erf form and x*sigmoid(x) become single ops."""

import math

import numpy as np
import tvm
from onnx import TensorProto, helper
from tvm import relax

import tvmopt
from tvmopt.passes.recognize_activations import RecognizeActivations

from .helpers import assert_matches_ort, make_model
from .passes_helpers import const, f32, module

SQRT2 = math.sqrt(2)


def erf_gelu(bb, x, scale=SQRT2, half=0.5):
    erf = bb.emit(relax.op.erf(bb.emit(relax.op.divide(x, const(scale)))))
    product = bb.emit(relax.op.multiply(x, bb.emit(relax.op.add(erf, const(1.0)))))
    return relax.op.multiply(product, const(half))


def test_erf_gelu_becomes_gelu():
    mod = module({"x": f32(2, 8)}, erf_gelu)
    result = relax.transform.DeadCodeElimination()(RecognizeActivations(mod))
    expected = module({"x": f32(2, 8)}, lambda bb, x: relax.op.nn.gelu(x))
    tvm.ir.assert_structural_equal(result, expected)


def test_x_times_sigmoid_becomes_silu():
    mod = module({"x": f32(4)}, lambda bb, x: relax.op.multiply(x, bb.emit(relax.op.sigmoid(x))))
    result = relax.transform.DeadCodeElimination()(RecognizeActivations(mod))
    tvm.ir.assert_structural_equal(result, module({"x": f32(4)}, lambda bb, x: relax.op.nn.silu(x)))


def test_lookalikes_are_left_alone():
    def body(bb, x, y):
        wrong_half = erf_gelu(bb, x, half=0.25)
        wrong_scale = erf_gelu(bb, x, scale=2.0)
        other = relax.op.multiply(x, bb.emit(relax.op.sigmoid(y)))  # x * sigmoid(y)
        return relax.Tuple([bb.emit(wrong_half), bb.emit(wrong_scale), bb.emit(other)])

    mod = module({"x": f32(4), "y": f32(4)}, body)
    tvm.ir.assert_structural_equal(RecognizeActivations(mod), mod)


def test_onnx_erf_gelu_matches_onnxruntime():
    node = helper.make_node
    model = make_model(
        [
            node("Div", ["x", "sqrt2"], ["d"]),
            node("Erf", ["d"], ["e"]),
            node("Add", ["e", "one"], ["a"]),
            node("Mul", ["x", "a"], ["m"]),
            node("Mul", ["m", "half"], ["y"]),
        ],
        [("x", TensorProto.FLOAT, [3, 16])],
        [("y", TensorProto.FLOAT, [3, 16])],
        initializers={
            "sqrt2": np.float32(math.sqrt(2)), "one": np.float32(1), "half": np.float32(0.5),
        },
    )  # fmt: skip
    assert_matches_ort(model, tvmopt.compile(model))
