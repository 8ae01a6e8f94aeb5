"""converters_symbolic.Reshape, on the two forms the dynamo exporter gives GPT-2 with its cache:
a dim sum reshaped to [1] for an Expand's shape, and a -1 beside a dim sum (past + seq), which
TVM infers as a division it cannot simplify and then fails to build."""

import numpy as np
from onnx import TensorProto, helper

import tvmopt
from tvmopt.frontend.onnx import import_model, prepare

from .helpers import assert_matches_ort, make_model

node = helper.make_node


def total_length_expand():
    """Expand(x [batch, 1], [1, past + seq]) with past + seq summed from two shapes' dims."""
    nodes = [
        node("Shape", ["past"], ["past_dim"], start=1, end=2),
        node("Shape", ["ids"], ["seq_dim"], start=1, end=2),
        node("Squeeze", ["past_dim"], ["past_length"]),
        node("Squeeze", ["seq_dim"], ["seq_length"]),
        node("Add", ["past_length", "seq_length"], ["total"]),
        node("Reshape", ["total", "flat"], ["total_1d"]),
        node("Concat", ["one", "total_1d"], ["shape"], axis=0),
        node("Expand", ["x", "shape"], ["y"]),
    ]  # fmt: skip
    constants = {"flat": np.array([-1], np.int64), "one": np.array([1], np.int64)}
    inputs = [("x", TensorProto.FLOAT, ["batch", 1]), ("ids", TensorProto.INT64, ["batch", "seq"]),
              ("past", TensorProto.FLOAT, ["batch", "past"])]  # fmt: skip
    return make_model(nodes, inputs, [("y", TensorProto.FLOAT, ["batch", "total"])], constants)


def heads_flattened():
    """Reshape(k [batch, 4, past + seq, 8], [-1, past + seq, 8]) then a transpose, as the
    dynamo exporter writes the keys of a batched matmul."""
    nodes = [
        node("Concat", ["past", "new"], ["keys"], axis=2),
        node("Shape", ["keys"], ["length"], start=2, end=3),
        node("Concat", ["minus_one", "length", "eight"], ["shape"], axis=0),
        node("Reshape", ["keys", "shape"], ["flat"]),
        node("Transpose", ["flat"], ["y"], perm=[0, 2, 1]),
    ]  # fmt: skip
    constants = {"minus_one": np.array([-1], np.int64), "eight": np.array([8], np.int64)}
    cache = lambda name, dim: (name, TensorProto.FLOAT, ["batch", 4, dim, 8])  # noqa: E731
    return make_model(nodes, [cache("past", "past"), cache("new", "seq")],
                      [("y", TensorProto.FLOAT, [None, 8, None])], constants)  # fmt: skip


def test_a_dim_sum_reshaped_to_one_element_stays_a_shape():
    model = total_length_expand()
    compiled = tvmopt.compile(model, dims={"batch": "1..2", "seq": "1..8", "past": "0..8"})
    rng = np.random.default_rng(0)
    for batch, seq, past in [(1, 1, 0), (2, 3, 5)]:
        feeds = {"x": rng.standard_normal((batch, 1)).astype(np.float32),
                 "ids": np.zeros((batch, seq), np.int64),
                 "past": np.zeros((batch, past), np.float32)}  # fmt: skip
        assert_matches_ort(model, compiled, feeds)


def test_a_minus_one_beside_a_dim_sum_is_the_dims_it_stands_for():
    model = heads_flattened()
    reshaped = import_model(prepare(model))["main"].ret_ty.shape.values
    # batch * 4, not batch * (past + seq) * 32 // (past * 8 + seq * 8)
    assert str(reshaped[0]).replace("T.int64(4)", "4") == "batch * 4", reshaped
    compiled = tvmopt.compile(model, dims={"batch": "1..2", "seq": "1..8", "past": "0..8"})
    rng = np.random.default_rng(0)
    for batch, seq, past in [(1, 1, 0), (2, 3, 5)]:
        feeds = {"past": rng.standard_normal((batch, 4, past, 8)).astype(np.float32),
                 "new": rng.standard_normal((batch, 4, seq, 8)).astype(np.float32)}  # fmt: skip
        assert_matches_ort(model, compiled, feeds)
