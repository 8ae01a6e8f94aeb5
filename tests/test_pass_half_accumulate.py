"""half_accumulate: float16 matmul and softmax round once, as ONNX Runtime's do."""

import numpy as np
import pytest
from onnx import TensorProto, helper

import tvmopt

from .helpers import make_model

F16 = TensorProto.FLOAT16


def _ulps(actual: np.ndarray, expected: np.ndarray) -> int:
    spacing = np.spacing(np.abs(expected).astype(np.float16)).astype(np.float32)
    return int(np.max(np.abs(actual.astype(np.float32) - expected.astype(np.float32)) / spacing))


@pytest.mark.parametrize("opt_level", [0, 3])
def test_a_long_float16_dot_product_is_within_one_unit_of_the_float32_one(opt_level):
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 1, (4, 512)).astype(np.float16)
    b = rng.uniform(0, 1, (512, 8)).astype(np.float16)
    node = helper.make_node("MatMul", ["a", "b"], ["y"])
    model = make_model([node], [("a", F16, (4, 512)), ("b", F16, (512, 8))], [("y", F16, (4, 8))])
    y = tvmopt.compile(model, opt_level=opt_level).run({"a": a, "b": b})["y"]
    assert _ulps(y, (a.astype(np.float32) @ b.astype(np.float32)).astype(np.float16)) <= 1


def test_a_float16_softmax_is_within_one_unit_of_the_float32_one():
    x = np.linspace(-4, 4, 3 * 300, dtype=np.float16).reshape(3, 300)
    model = make_model([helper.make_node("Softmax", ["x"], ["y"], axis=1)],
                       [("x", F16, (3, 300))], [("y", F16, (3, 300))])  # fmt: skip
    y = tvmopt.compile(model).run({"x": x})["y"]
    wide = np.exp(x.astype(np.float32) - x.astype(np.float32).max(1, keepdims=True))
    assert _ulps(y, (wide / wide.sum(1, keepdims=True)).astype(np.float16)) <= 1
