"""Our ONNX converters: Clip with constant bounds imports as one relax.clip, which fuses into
the convolution before it; other Clips keep TVM's conversion; a variadic Sum imports as pairwise
adds; CumProd, LpNormalization and NegativeLogLikelihoodLoss, which TVM's importer lacks, import
(converters_missing.py). Checked against ONNX Runtime."""

from __future__ import annotations

import re

import numpy as np
import pytest
from onnx import TensorProto, helper

import tvmopt
from tvmopt.frontend import onnx as frontend

from .helpers import assert_matches_ort, make_model


def _conv_clip(low, high, bounds_as_inputs=False):
    rng = np.random.default_rng(0)
    inits = {"w": rng.standard_normal((8, 4, 3, 3)).astype(np.float32)}
    clip_inputs = ["c", "lo", "hi"]
    inputs = [("x", TensorProto.FLOAT, [1, 4, 6, 6])]
    if bounds_as_inputs:
        inputs += [("lo", TensorProto.FLOAT, []), ("hi", TensorProto.FLOAT, [])]
    else:
        inits |= {"lo": np.array(low, np.float32), "hi": np.array(high, np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1] * 4),
             helper.make_node("Clip", clip_inputs, ["y"])]  # fmt: skip
    return make_model(nodes, inputs, [("y", TensorProto.FLOAT, [1, 8, 6, 6])], inits)


def _ops(model) -> list[str]:
    main = frontend.import_model(frontend.prepare(model))["main"]
    return [str(getattr(b.value.op, "name", b.value.op)) for block in main.body.blocks
            for b in block.bindings if hasattr(b.value, "op")]  # fmt: skip


def test_relu6_is_one_clip_and_fuses_into_the_conv(tmp_path):
    model = _conv_clip(0.0, 6.0)
    assert "relax.clip" in _ops(model)
    compiled = tvmopt.compile(model, dump_ir=tmp_path)
    assert_matches_ort(model, compiled)
    scheduled = sorted(tmp_path.glob("*ApplyDefaultSchedule*"))[-1].read_text()
    assert re.search(r"def fused_conv2d_nhwc\w*_clip\w*\(", scheduled)


@pytest.mark.parametrize("low, high", [(np.nan, 1.0), (-1.0, np.nan)])
def test_nan_bound_means_unbounded_as_in_onnx(low, high):
    model = _conv_clip(low, high)
    assert "relax.clip" not in _ops(model)  # TVM's conversion handles NaN bounds
    assert_matches_ort(model, tvmopt.compile(model))


def test_run_time_bounds_keep_tvms_conversion():
    model = _conv_clip(0, 0, bounds_as_inputs=True)
    assert "relax.clip" not in _ops(model)
    feeds = {"x": np.random.default_rng(1).standard_normal((1, 4, 6, 6)).astype(np.float32),
             "lo": np.array(-0.5, np.float32), "hi": np.array(2.0, np.float32)}  # fmt: skip
    assert_matches_ort(model, tvmopt.compile(model), feeds)


def test_sum_imports_as_pairwise_adds_and_matches_onnxruntime():
    """TVM's import (broadcast_to, stack, sum) hid the model zoo's residual adds from the layout
    passes; three inputs, one broadcasting, as ONNX's Sum allows."""
    model = make_model(
        [helper.make_node("Sum", ["a", "b", "c"], ["y"])],
        [("a", TensorProto.FLOAT, [2, 3, 4]), ("b", TensorProto.FLOAT, [2, 3, 4]),
         ("c", TensorProto.FLOAT, [4])],
        [("y", TensorProto.FLOAT, [2, 3, 4])],
        opset=13,
    )  # fmt: skip
    assert _ops(model) == ["relax.add", "relax.add"]
    assert_matches_ort(model, tvmopt.compile(model))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_negative_log_likelihood_loss_matches_onnxruntime(reduction, weighted):
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((3, 5, 2)).astype(np.float32)
    target = np.array([[0, 4], [2, 1], [1, 3]], dtype=np.int64)  # 1 is ignored
    inputs = ["x", "t", "w"] if weighted else ["x", "t"]
    weights = {"w": rng.uniform(0.5, 2, 5).astype(np.float32)} if weighted else {}
    node = helper.make_node("NegativeLogLikelihoodLoss", inputs, ["loss"], reduction=reduction,
                            ignore_index=1)  # fmt: skip
    shape = (3, 2) if reduction == "none" else ()
    model = make_model([node], [("x", TensorProto.FLOAT, scores.shape),
                                ("t", TensorProto.INT64, target.shape)],
                       [("loss", TensorProto.FLOAT, shape)], weights)  # fmt: skip
    assert_matches_ort(model, tvmopt.compile(model), {"x": scores, "t": target})


@pytest.mark.parametrize(("exclusive", "reverse"), [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_cumprod_matches_onnxruntime(exclusive, reverse):
    node = helper.make_node("CumProd", ["x", "axis"], ["y"], exclusive=exclusive,
                            reverse=reverse)  # fmt: skip
    model = make_model([node], [("x", TensorProto.FLOAT, (2, 4))], [("y", TensorProto.FLOAT,
                       (2, 4))], {"axis": np.array(1, np.int64)}, opset=26)  # fmt: skip
    x = np.linspace(0.5, 2.0, 8, dtype=np.float32).reshape(2, 4)
    assert_matches_ort(model, tvmopt.compile(model), {"x": x})


@pytest.mark.parametrize("p", [1, 2])
def test_lp_normalization_matches_onnxruntime(p):
    node = helper.make_node("LpNormalization", ["x"], ["y"], axis=1, p=p)
    model = make_model([node], [("x", TensorProto.FLOAT, (3, 4))], [("y", TensorProto.FLOAT,
                       (3, 4))])  # fmt: skip
    assert_matches_ort(model, tvmopt.compile(model))


@pytest.mark.parametrize(("negative", "positive"), [(1, 0), (0, 1), (0, 0)])
def test_isinf_detects_only_the_infinities_asked_for(negative, positive):
    node = helper.make_node("IsInf", ["x"], ["y"], detect_negative=negative,
                            detect_positive=positive)  # fmt: skip
    model = make_model([node], [("x", TensorProto.FLOAT, (4,))], [("y", TensorProto.BOOL, (4,))])
    x = np.array([-np.inf, np.inf, 1.0, np.nan], dtype=np.float32)
    assert_matches_ort(model, tvmopt.compile(model), {"x": x})


def test_space_to_depth_in_crd_order_matches_onnx():
    from onnx.reference import ReferenceEvaluator

    node = helper.make_node("SpaceToDepth", ["x"], ["y"], blocksize=2, mode="CRD")
    model = make_model([node], [("x", TensorProto.FLOAT, (1, 2, 4, 4))],
                       [("y", TensorProto.FLOAT, (1, 8, 2, 2))], opset=28)  # fmt: skip
    x = np.arange(32, dtype=np.float32).reshape(1, 2, 4, 4)
    (expected,) = ReferenceEvaluator(model).run(None, {"x": x})
    np.testing.assert_array_equal(tvmopt.compile(model).run({"x": x})["y"], expected)


def test_layer_normalization_gives_its_mean_and_inverse_deviation():
    rng = np.random.default_rng(0)
    weights = {"g": rng.uniform(0.5, 2, (3, 4)).astype(np.float32),
               "b": rng.standard_normal((3, 4)).astype(np.float32)}  # fmt: skip
    node = helper.make_node("LayerNormalization", ["x", "g", "b"], ["y", "mean", "inv"], axis=1)
    model = make_model([node], [("x", TensorProto.FLOAT, (2, 3, 4))],
                       [("y", TensorProto.FLOAT, (2, 3, 4)), ("mean", TensorProto.FLOAT, (2, 1, 1)),
                        ("inv", TensorProto.FLOAT, (2, 1, 1))], weights)  # fmt: skip
    assert_matches_ort(model, tvmopt.compile(model))


RECURRENT = [  # op, gates, attributes
    ("RNN", 1, {"direction": "reverse", "activations": ["Relu"]}),
    ("GRU", 3, {"direction": "bidirectional", "linear_before_reset": 1}),
    ("GRU", 3, {"clip": 1.5}),
    ("LSTM", 4, {"direction": "bidirectional"}),
    ("LSTM", 4, {"layout": 1}),
    ("LSTM", 4, {"input_forget": 1}),
]


@pytest.mark.parametrize(("op_type", "gates", "attributes"), RECURRENT)
def test_recurrent_layers_unroll_and_match_onnxruntime(op_type, gates, attributes):
    """With biases, initial states and (LSTM) peepholes, Y and the final states."""
    rng = np.random.default_rng(0)
    steps, batch, width, hidden = 5, 2, 3, 4
    directions = 2 if attributes.get("direction") == "bidirectional" else 1
    lstm, layout = op_type == "LSTM", attributes.get("layout", 0)
    weights = {
        "w": rng.uniform(-0.5, 0.5, (directions, gates * hidden, width)),
        "r": rng.uniform(-0.5, 0.5, (directions, gates * hidden, hidden)),
        "b": rng.uniform(-0.5, 0.5, (directions, 2 * gates * hidden)),
    }
    state = (batch, directions, hidden) if layout else (directions, batch, hidden)
    weights["h0"] = rng.uniform(-1, 1, state)
    names = ["x", "w", "r", "b", "", "h0"]
    if lstm:
        weights["c0"] = weights["h0"] * 0.5
        weights["p"] = rng.uniform(-0.5, 0.5, (directions, 3 * hidden))
        names += ["c0", "p"]
    weights = {k: v.astype(np.float32) for k, v in weights.items()}
    outputs = ["y", "y_h", "y_c"][: 3 if lstm else 2]
    node = helper.make_node(op_type, names, outputs, hidden_size=hidden, **attributes)
    x_shape = (batch, steps, width) if layout else (steps, batch, width)
    y_shape = (batch, steps, directions, hidden) if layout else (steps, directions, batch, hidden)
    finals = [(name, TensorProto.FLOAT, state) for name in outputs[1:]]
    model = make_model([node], [("x", TensorProto.FLOAT, x_shape)],
                       [("y", TensorProto.FLOAT, y_shape), *finals], weights)  # fmt: skip
    if not layout:
        assert_matches_ort(model, tvmopt.compile(model))
        return
    # ONNX Runtime has no batch-first (layout 1) recurrent kernels: onnx's reference instead
    from onnx.reference import ReferenceEvaluator

    x = rng.standard_normal(x_shape).astype(np.float32)
    expected = ReferenceEvaluator(model).run(None, {"x": x})
    actual = tvmopt.compile(model).run({"x": x})
    for name, reference in zip(outputs, expected, strict=True):
        np.testing.assert_allclose(actual[name], reference, rtol=1e-5, atol=1e-6)


# Per-op fixes: reductions of empty tensors, Pow and Mod (converters_arithmetic.py), OneHot
def test_integer_pow_is_exact_wraps_as_numpy_and_broadcasts():
    node = helper.make_node("Pow", ["x", "n"], ["y"])
    model = make_model([node], [("x", TensorProto.INT64, (4, 1)), ("n", TensorProto.INT32, (5,))],
                       [("y", TensorProto.INT64, (4, 5))])  # fmt: skip
    x = np.array([[3], [-7], [1], [2**31 + 1]], dtype=np.int64)
    n = np.array([0, 1, 13, 39, 63], dtype=np.int32)
    y = tvmopt.compile(model).run({"x": x, "n": n})["y"]
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(y, np.power(x, n.astype(np.int64)))


def test_integer_pow_with_negative_exponent_truncates_the_real_power():
    node = helper.make_node("Pow", ["x", "n"], ["y"])
    model = make_model([node], [("x", TensorProto.INT8, (6,)), ("n", TensorProto.INT64, (6,))],
                       [("y", TensorProto.INT8, (6,))])  # fmt: skip
    x = np.array([1, -1, -1, 2, -3, 5], dtype=np.int8)
    n = np.array([-5, -3, -2, -1, -1, 2], dtype=np.int64)
    y = tvmopt.compile(model).run({"x": x, "n": n})["y"]
    np.testing.assert_array_equal(y, [1, -1, 1, 0, 0, 25])  # as ONNX Runtime's C cast of pow


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's mean of nothing, in the reference
def test_reductions_of_an_empty_tensor_give_their_identity():
    from onnx.reference import ReferenceEvaluator

    nodes = [helper.make_node(f"Reduce{op}", ["x", "axes"], [op]) for op in
             ("Sum", "Prod", "Max", "Min", "Mean", "LogSumExp", "L2")]  # fmt: skip
    outputs = [(node.output[0], TensorProto.FLOAT, (3, 1)) for node in nodes]
    model = make_model(nodes, [("x", TensorProto.FLOAT, (3, 0))], outputs,
                       {"axes": np.array([1], np.int64)}, opset=18)  # fmt: skip
    x = np.zeros((3, 0), np.float32)
    expected = ReferenceEvaluator(model).run(None, {"x": x})
    actual = tvmopt.compile(model).run({"x": x})
    for (name, *_), reference in zip(outputs, expected, strict=True):
        np.testing.assert_array_equal(actual[name], reference)


def test_one_hot_with_run_time_values_and_float_indices_matches_onnxruntime():
    node = helper.make_node("OneHot", ["i", "depth", "values"], ["y"], axis=0)
    model = make_model([node], [("i", TensorProto.FLOAT, (2, 3)),
                                ("values", TensorProto.FLOAT, (2,))],
                       [("y", TensorProto.FLOAT, (4, 2, 3))],
                       {"depth": np.array(4, np.float32)})  # fmt: skip
    feeds = {"i": np.array([[0, 1.7, 3], [-1, -4.2, 4]], np.float32),
             "values": np.array([-2, 5], np.float32)}  # fmt: skip
    assert_matches_ort(model, tvmopt.compile(model), feeds)


def test_float_mod_is_numpys_mod_with_infinities_and_signed_zeros():
    node = helper.make_node("Mod", ["x", "y"], ["z"])
    model = make_model([node], [("x", TensorProto.FLOAT, (8,)), ("y", TensorProto.FLOAT, (8,))],
                       [("z", TensorProto.FLOAT, (8,))])  # fmt: skip
    x = np.array([-3, 3, 1, 4, -4, 6, 5.5, np.inf], np.float32)
    y = np.array([np.inf, -np.inf, -np.inf, -2, 2, -3, -2, 3], np.float32)
    z = tvmopt.compile(model).run({"x": x, "y": y})["z"]
    with np.errstate(invalid="ignore"):
        expected = np.mod(x, y)
    np.testing.assert_array_equal(z, expected)
    np.testing.assert_array_equal(np.signbit(z), np.signbit(expected))


def test_split_with_a_zero_size_part_matches_onnxruntime():
    node = helper.make_node("Split", ["x", "sizes"], ["a", "b", "c"], axis=1)
    sizes = {"a": 2, "b": 0, "c": 3}
    outputs = [(name, TensorProto.FLOAT, (2, size)) for name, size in sizes.items()]
    model = make_model([node], [("x", TensorProto.FLOAT, (2, 5))], outputs,
                       {"sizes": np.array([2, 0, 3], np.int64)})  # fmt: skip
    assert_matches_ort(model, tvmopt.compile(model))
