"""infinite_extrema: max and min of rows of infinities are those infinities, at every level."""

import numpy as np
import pytest
from onnx import TensorProto, helper

import tvmopt

from .helpers import make_model, ort_outputs

ROWS = np.array(
    [[-np.inf, -np.inf, -np.inf], [np.inf, np.inf, np.inf], [1.0, -np.inf, np.inf]], np.float32
)


@pytest.mark.parametrize("opt_level", [0, 3])
@pytest.mark.parametrize("op", ["ReduceMax", "ReduceMin"])
def test_a_row_of_infinities_reduces_to_that_infinity(op, opt_level):
    node = helper.make_node(op, ["x"], ["y"], axes=[1], keepdims=0)
    model = make_model([node], [("x", TensorProto.FLOAT, (3, 3))], [("y", TensorProto.FLOAT, (3,))])
    got = tvmopt.compile(model, opt_level=opt_level).run({"x": ROWS})["y"]
    np.testing.assert_array_equal(got, ort_outputs(model, {"x": ROWS})["y"])


def test_integers_keep_their_extremes():
    x = np.array([[np.iinfo(np.int32).min] * 3, [5, -7, 2]], np.int32)
    node = helper.make_node("ReduceMax", ["x"], ["y"], axes=[1], keepdims=1)
    int32 = TensorProto.INT32
    model = make_model([node], [("x", int32, (2, 3))], [("y", int32, (2, 1))])
    np.testing.assert_array_equal(tvmopt.compile(model).run({"x": x})["y"], [[x[0, 0]], [5]])
