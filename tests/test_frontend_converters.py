"""Our ONNX converters: Clip with constant bounds imports as one relax.clip, which fuses into
the convolution before it; other Clips keep TVM's conversion; a variadic Sum imports as pairwise
adds; CumProd, LpNormalization and NegativeLogLikelihoodLoss, which TVM's importer lacks, import
(converters_missing.py). Checked against ONNX Runtime."""

from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import tvmopt
from tvmopt.frontend import onnx as frontend

from .helpers import assert_matches_ort, make_model, ort_outputs


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


# sequences (converters_sequences.py, backend_sequences.py)
def _split_map_concat_model() -> onnx.ModelProto:
    """x split along axis 1 (a tuple-typed call, not a literal tuple), each piece doubled and
    negated by a two-output SequenceMap, the last of one erased, then concatenated back."""
    body = helper.make_graph(
        [helper.make_node("Add", ["piece", "piece"], ["doubled"]),
         helper.make_node("Neg", ["piece"], ["negated"])],
        "body", [helper.make_tensor_value_info("piece", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("doubled", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("negated", TensorProto.FLOAT, None)],
    )  # fmt: skip
    nodes = [
        helper.make_node("SplitToSequence", ["x", "split"], ["pieces"], axis=1),
        helper.make_node("SequenceMap", ["pieces"], ["doubled", "negated"], body=body),
        helper.make_node("SequenceErase", ["negated", "last"], ["kept"]),
        helper.make_node("SequenceAt", ["doubled", "last"], ["y"]),
        helper.make_node("ConcatFromSequence", ["kept"], ["z"], axis=1),
        helper.make_node("SequenceLength", ["kept"], ["n"]),
    ]
    return make_model(
        nodes, [("x", TensorProto.FLOAT, (2, 6))],
        [("y", TensorProto.FLOAT, (2, 3)), ("z", TensorProto.FLOAT, (2, 3)),
         ("n", TensorProto.INT64, ())],
        {"split": np.array([1, 2, 3], np.int64), "last": np.array(-1, np.int64)},
    )  # fmt: skip


def test_sequence_ops_on_a_split_and_a_two_output_map_match_onnxruntime():
    model = _split_map_concat_model()
    assert_matches_ort(model, tvmopt.compile(model))


def test_backend_passes_optionals_and_sequences_as_none_and_lists():
    from tvmopt.frontend import backend

    tensor, vector = (helper.make_tensor_type_proto(TensorProto.FLOAT, s) for s in (None, [3]))
    optional = helper.make_optional_type_proto(vector)
    sequence = helper.make_sequence_type_proto(tensor)
    graph = helper.make_graph(
        [helper.make_node("OptionalHasElement", ["maybe"], ["holds"]),
         helper.make_node("SequenceInsert", ["items", "x", "front"], ["longer"])],
        "boundary",
        [helper.make_value_info("maybe", optional), helper.make_value_info("items", sequence),
         helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("holds", TensorProto.BOOL, []),
         helper.make_value_info("longer", sequence)],
        [onnx.numpy_helper.from_array(np.array(-1, np.int64), "front")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    rep = backend.prepare(model)
    a, b, x = (np.full(n, n, np.float32) for n in (1, 3, 2))
    holds, longer = rep.run([None, [a, b], x])
    assert not holds and [v.tolist() for v in longer] == [a.tolist(), x.tolist(), b.tolist()]
    holds, longer = rep.run([np.zeros(3, np.float32), [a], x])
    assert holds and [v.tolist() for v in longer] == [x.tolist(), a.tolist()]


# Resize (converters_resize.py)
RESIZES = [  # attributes, then the roi, scales, sizes inputs (None: absent)
    ({"mode": "nearest"}, None, [1, 1, 2.0, 3.0], None),  # TVM's resize2d
    ({"mode": "linear", "coordinate_transformation_mode": "asymmetric"}, None, None, [2, 3, 9, 4]),
    ({"mode": "nearest", "nearest_mode": "ceil"}, None, [1, 1, 0.6, 1.7], None),
    ({"mode": "linear"}, None, [1, 1, 0.6, 0.7], None),  # a scale other than output / input
    ({"mode": "cubic", "cubic_coeff_a": -0.5, "exclude_outside": 1}, None, [1, 1, 0.8, 2.5], None),
    ({"mode": "linear", "antialias": 1}, None, None, [2, 3, 2, 3]),
    ({"mode": "cubic", "antialias": 1, "axes": [3, 2]}, None, [0.5, 1.5], None),
    ({"mode": "linear", "coordinate_transformation_mode": "half_pixel_symmetric"}, None,
     [1, 1, 1.3, 0.7], None),  # fmt: skip
    ({"mode": "nearest", "axes": [2, 3], "keep_aspect_ratio_policy": "not_larger"}, None, None,
     [4, 3]),  # fmt: skip
    ({"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize", "axes": [2, 3],
      "extrapolation_value": 2.0}, [-0.2, 0.1, 0.9, 1.2], None, [4, 5]),  # fmt: skip
]


@pytest.mark.parametrize(("attributes", "roi", "scales", "sizes"), RESIZES)
def test_resize_matches_onnxruntime(attributes, roi, scales, sizes):
    """Resize's modes, coordinate modes, antialias, axes and aspect policies on a 4-D input."""
    values = {"roi": roi, "scales": scales, "sizes": sizes}
    weights = {name: np.asarray(value, np.int64 if name == "sizes" else np.float32)
               for name, value in values.items() if value is not None}  # fmt: skip
    names = ["x"] + [name if name in weights else "" for name in values]
    while not names[-1]:
        names.pop()
    node = helper.make_node("Resize", names, ["y"], **attributes)
    x, y = ("x", TensorProto.FLOAT, (2, 3, 5, 6)), ("y", TensorProto.FLOAT, ["n", "c", "h", "w"])
    model = make_model([node], [x], [y], weights, opset=19)
    assert_matches_ort(model, tvmopt.compile(model))


@pytest.mark.parametrize("target", [None, "x86-64-v3"])
@pytest.mark.parametrize(("sizes", "tvm_kernel"), [((7, 8), False), ((4, 8), True)])
def test_nearest_resize_decides_ties_exactly_on_every_isa(target, sizes, tvm_kernel):
    """2 -> 7 rows maps output row 3 to exactly 0.5: TVM's float32 coordinates put it on
    either side depending on the CPU's code (row 1 on znver4), so our taps take it; a 2x
    upsample's coordinates are exact in float32 and keep TVM's resize2d."""
    x = np.array([[[[1, 2], [3, 4]]]], np.float32)
    node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="nearest")
    weights = {"sizes": np.array([1, 1, *sizes], np.int64)}
    spec = [("x", TensorProto.FLOAT, x.shape)], [("y", TensorProto.FLOAT, [1, 1, *sizes])]
    model = make_model([node], *spec, weights, opset=19)
    imported = frontend.import_model(frontend.prepare(model))["main"]
    assert ("resize2d" in str(imported)) == tvm_kernel
    compiled = tvmopt.compile(model, target=target)
    assert np.array_equal(compiled.run({"x": x})["y"], ort_outputs(model, {"x": x})["y"])


@pytest.mark.parametrize(("op_type", "opset"), [("Upsample", 9), ("Resize", 10)])
@pytest.mark.parametrize(
    ("mode", "scales"), [("linear", [1, 1, 2, 0.5]), ("nearest", [1, 1, 1.25, 3])]
)
def test_resize_10_keeps_its_coordinates_through_the_opset_upgrade(op_type, opset, mode, scales):
    """Upgraded to Resize-13, a Resize-10 or Upsample still maps coordinates asymmetrically."""
    if op_type == "Upsample" and min(scales) < 1:
        scales = [1, 1, 2, 1.5]  # Upsample only enlarges
    node = helper.make_node(op_type, ["x", "scales"], ["y"], mode=mode)
    x, y = ("x", TensorProto.FLOAT, (1, 2, 4, 6)), ("y", TensorProto.FLOAT, ["n", "c", "h", "w"])
    weights = {"scales": np.asarray(scales, np.float32)}
    model = make_model([node], [x], [y], weights, opset=opset)
    assert_matches_ort(model, tvmopt.compile(model))


# Scan and Loop, unrolled before import (frontend/unroll_loops.py)


def _scan_model(nested_if=False):
    """Two states (one of them a running sum that reads an outer weight), inputs scanned on
    axis 1 forward and axis 0 in reverse, outputs stacked on axis 1 and prepended on axis 0."""
    body_nodes = [
        helper.make_node("Mul", ["x_t", "w"], ["scaled"]),
        helper.make_node("Add", ["sum_in", "scaled"], ["sum_out"]),
        helper.make_node("Mul", ["prod_in", "r_t"], ["prod_out"]),
        helper.make_node("Sub", ["sum_out", "r_t"], ["diff"]),
        helper.make_node("Identity", ["sum_out"], ["out_a"]),
    ]
    if nested_if:  # a branch that reads a body value: the copies must rename inside it too
        negated = helper.make_tensor_value_info("negated", TensorProto.FLOAT, [3])
        same = helper.make_tensor_value_info("same", TensorProto.FLOAT, [3])
        branch = helper.make_graph([helper.make_node("Neg", ["diff"], ["negated"])], "then", [],
                                   [negated])  # fmt: skip
        other = helper.make_graph([helper.make_node("Identity", ["diff"], ["same"])], "else", [],
                                  [same])  # fmt: skip
        body_nodes.append(helper.make_node("If", ["flag"], ["out_b"], then_branch=branch,
                                           else_branch=other))  # fmt: skip
    else:
        body_nodes.append(helper.make_node("Identity", ["diff"], ["out_b"]))
    def vectors(*names):
        return [helper.make_tensor_value_info(name, TensorProto.FLOAT, [3]) for name in names]

    body = helper.make_graph(body_nodes, "body", vectors("sum_in", "prod_in", "x_t", "r_t"),
                             vectors("sum_out", "prod_out", "out_a", "out_b"))  # fmt: skip
    node = helper.make_node("Scan", ["s0", "p0", "x", "r"], ["s", "p", "ys", "zs"], body=body,
                            num_scan_inputs=2, scan_input_axes=[1, 0],
                            scan_input_directions=[0, 1], scan_output_axes=[1, 0],
                            scan_output_directions=[0, 1])  # fmt: skip
    weights = {"w": np.array([0.5, -1.0, 2.0], np.float32), "flag": np.array(True)}
    vec = TensorProto.FLOAT
    return make_model([node], [("s0", vec, [3]), ("p0", vec, [3]), ("x", vec, [3, 4]),
                               ("r", vec, [4, 3])],
                      [("s", vec, [3]), ("p", vec, [3]), ("ys", vec, [3, 4]), ("zs", vec, [4, 3])],
                      weights)  # fmt: skip


@pytest.mark.parametrize("nested_if", [False, True])
def test_scan_unrolls_with_axes_directions_and_outer_values(nested_if):
    model = _scan_model(nested_if)
    assert "Scan" not in {node.op_type for node in frontend.prepare(model).graph.node}
    assert_matches_ort(model, tvmopt.compile(model))


def _loop_model(steps, cond_out="Identity"):
    """y += x[i] * i each iteration, the running y stacked; the trip count is constant."""
    body_nodes = [
        helper.make_node("Gather", ["x", "i"], ["x_i"]),
        helper.make_node("Cast", ["i"], ["i_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["x_i", "i_f"], ["term"]),
        helper.make_node("Add", ["y_in", "term"], ["y_out"]),
        helper.make_node("Identity", ["y_out"], ["y_scan"]),
    ]
    if cond_out == "Identity":
        body_nodes.append(helper.make_node("Identity", ["c_in"], ["c_out"]))
    else:  # the loop may stop early: it cannot be unrolled
        body_nodes.append(helper.make_node("Less", ["i", "limit"], ["c_out"]))
    scalar_i = helper.make_tensor_value_info("i", TensorProto.INT64, [])
    body = helper.make_graph(
        body_nodes, "body",
        [scalar_i, helper.make_tensor_value_info("c_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("y_in", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("y_out", TensorProto.FLOAT, [2]),
         helper.make_tensor_value_info("y_scan", TensorProto.FLOAT, [2])],
    )  # fmt: skip
    node = helper.make_node("Loop", ["m", "cond", "y0"], ["y", "ys"], body=body, name="the_loop")
    weights = {"m": np.array(steps, np.int64), "cond": np.array(True),
               "limit": np.array(2, np.int64)}  # fmt: skip
    return make_model([node], [("y0", TensorProto.FLOAT, [2]), ("x", TensorProto.FLOAT, [5, 2])],
                      [("y", TensorProto.FLOAT, [2]), ("ys", TensorProto.FLOAT, [steps, 2])],
                      weights)  # fmt: skip


def test_loop_with_a_constant_trip_count_unrolls_and_matches_onnxruntime():
    model = _loop_model(4)
    assert_matches_ort(model, tvmopt.compile(model))


def test_loop_that_may_stop_early_stays_unsupported():
    with pytest.raises(tvmopt.UnsupportedOpError, match="Loop"):
        tvmopt.compile(_loop_model(4, cond_out="Less"))


def test_loop_too_long_to_unroll_is_refused_by_name():
    with pytest.raises(tvmopt.UnsupportedOpError, match="the_loop.*100000 iterations"):
        tvmopt.compile(_loop_model(100000))


def test_opset8_scan_unrolls_each_batch_entry():
    """Opset 8's Scan has a batch axis 0 (which onnx's 8->9 adapter drops unsliced)."""
    body = helper.make_graph(
        [helper.make_node("Add", ["sum_in", "x_t"], ["sum_out"]),
         helper.make_node("Mul", ["sum_out", "x_t"], ["out"])], "body",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2]) for n in ("sum_in", "x_t")],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2]) for n in ("sum_out", "out")],
    )  # fmt: skip
    node = helper.make_node("Scan", ["", "s0", "x"], ["s", "ys"], body=body, num_scan_inputs=1,
                            directions=[1])  # fmt: skip
    vec = TensorProto.FLOAT
    model = make_model([node], [("s0", vec, [3, 2]), ("x", vec, [3, 4, 2])],
                       [("s", vec, [3, 2]), ("ys", vec, [3, 4, 2])], opset=8)  # fmt: skip
    assert_matches_ort(model, tvmopt.compile(model))


def test_loop_holding_a_scan_unrolls_both():
    """A for-loop (no condition input) whose body scans a value it computes: the copied Scans
    unroll in a second round, once shape inference has seen their inputs."""
    def vector(name, shape=(2,)):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)

    scan_body = helper.make_graph([helper.make_node("Add", ["s_in", "row"], ["s_out"]),
                                   helper.make_node("Identity", ["s_out"], ["s_scan"])], "sums",
                                  [vector("s_in"), vector("row")],
                                  [vector("s_out"), vector("s_scan")])  # fmt: skip
    true = helper.make_tensor("true", TensorProto.BOOL, [], [True])
    loop_body = helper.make_graph([
        helper.make_node("Cast", ["i"], ["i_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["x", "i_f"], ["rows"]),
        helper.make_node("Scan", ["acc_in", "rows"], ["acc_out", "sums"], body=scan_body,
                         num_scan_inputs=1),
        helper.make_node("Constant", [], ["c_out"], value=true),
    ], "body", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                helper.make_tensor_value_info("c", TensorProto.BOOL, []), vector("acc_in")],
       [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []), vector("acc_out"),
        vector("sums", (3, 2))])  # fmt: skip
    node = helper.make_node("Loop", ["m", "", "a0"], ["acc", "all"], body=loop_body)
    vec = TensorProto.FLOAT
    model = make_model([node], [("a0", vec, [2]), ("x", vec, [3, 2])],
                       [("acc", vec, [2]), ("all", vec, [3, 3, 2])], {"m": np.array(3, np.int64)})
    assert_matches_ort(model, tvmopt.compile(model))


# --- ops TVM's importer lacks or fails to build (NMS, image, linalg, ai.onnx.ml) -------------


@pytest.mark.parametrize(("limit", "iou", "score"), [
    (2**63 - 1, 0.3, None),  # int64's max; no score threshold, negative scores compete
    (4, 0.5, -0.3),  # a negative score threshold
    (3, 0.0, None),  # any overlap suppresses
])  # fmt: skip
def test_nonmaxsuppression_matches_onnxruntime_at_the_edges(limit, iou, score):
    """Scores <= 0 and tied scores (rounded to tenths), where TVM's kernel needs corrections."""
    rng = np.random.default_rng(0)
    boxes = rng.random((2, 20, 4)).astype(np.float32)
    scores = np.round(rng.random((2, 3, 20)) * 2 - 0.5, 1).astype(np.float32)
    inits = {"limit": np.array([limit], np.int64), "iou": np.array([iou], np.float32)}
    if score is not None:
        inits["score"] = np.array([score], np.float32)
    node = helper.make_node("NonMaxSuppression", ["boxes", "scores", *inits], ["y"])
    model = make_model([node], [("boxes", TensorProto.FLOAT, boxes.shape),
                                ("scores", TensorProto.FLOAT, scores.shape)],
                       [("y", TensorProto.INT64, ["selected", 3])], inits, opset=21)  # fmt: skip
    feeds = {"boxes": boxes, "scores": scores}
    expected = ort_outputs(model, feeds)["y"]
    np.testing.assert_array_equal(tvmopt.compile(model).run(feeds)["y"], expected)


def test_col2im_with_every_attribute_matches_onnxruntime():
    """Two images of two channels, asymmetric pads, strides and dilations together."""
    image, block, pads, strides, dilations = [7, 6], [2, 3], [1, 0, 2, 1], [2, 1], [2, 1]
    grid = [(size + pads[d] + pads[d + 2] - dilations[d] * (block[d] - 1) - 1) // strides[d] + 1
            for d, size in enumerate(image)]  # fmt: skip
    x_shape = (2, 2 * 6, grid[0] * grid[1])
    inits = {"image": np.array(image, np.int64), "block": np.array(block, np.int64)}
    node = helper.make_node("Col2Im", ["x", "image", "block"], ["y"], pads=pads,
                            strides=strides, dilations=dilations)  # fmt: skip
    model = make_model([node], [("x", TensorProto.FLOAT, x_shape)],
                       [("y", TensorProto.FLOAT, (2, 2, *image))], inits, opset=18)  # fmt: skip
    assert_matches_ort(model, tvmopt.compile(model))


@pytest.mark.parametrize("mode", ["linear", "circular"])
def test_tensorscatter_without_write_indices_and_along_axis_1_matches_onnx(mode):
    """No write_indices (every batch entry writes from 0) and, circular, offsets that wrap."""
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(0)
    cache = rng.standard_normal((2, 5, 3)).astype(np.float32)
    update = rng.standard_normal((2, 3, 3)).astype(np.float32)
    offsets = np.array([4, 1], np.int64)
    for names in (["cache", "update"], ["cache", "update", "offsets"]):
        if mode == "linear" and len(names) == 3:
            offsets = np.array([2, 1], np.int64)  # linear writes stay inside the cache
        node = helper.make_node("TensorScatter", names, ["y"], axis=1, mode=mode)
        inputs = [(n, TensorProto.FLOAT if n != "offsets" else TensorProto.INT64, a.shape)
                  for n, a in zip(names, (cache, update, offsets), strict=False)]  # fmt: skip
        model = make_model([node], inputs, [("y", TensorProto.FLOAT, cache.shape)], opset=24)
        feeds = dict(zip(names, (cache, update, offsets), strict=False))
        (expected,) = ReferenceEvaluator(model).run(None, feeds)
        np.testing.assert_array_equal(tvmopt.compile(model).run(feeds)["y"], expected)


@pytest.mark.parametrize("shape", [(1, 1), (2, 3, 5, 5)])
def test_det_matches_onnxruntime_with_pivoting_and_a_singular_matrix(shape):
    """5x5 matrices whose first pivots are tiny (pivoting matters), and one singular matrix."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    if len(shape) > 2:
        x[..., 0, 0] = 1e-6
        x[0, 1, 4] = x[0, 1, 1] * 2  # rows 1 and 4 dependent: det 0
    model = make_model([helper.make_node("Det", ["x"], ["y"])], [("x", TensorProto.FLOAT, shape)],
                       [("y", TensorProto.FLOAT, shape[:-2])])  # fmt: skip
    expected = ort_outputs(model, {"x": x})["y"]
    actual = tvmopt.compile(model).run({"x": x})["y"]
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)


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


# DeformConv, MaxPool with indices, ConvTranspose output_shape (conf-f)


def test_deform_conv_with_groups_strides_dilations_and_uneven_pads_matches_onnx_reference():
    from onnx.reference import ReferenceEvaluator

    node = helper.make_node("DeformConv", ["x", "w", "offset", "b", "mask"], ["y"],
                            kernel_shape=[2, 2], pads=[1, 0, 1, 1], strides=[1, 2],
                            dilations=[2, 1], group=2, offset_group=2)  # fmt: skip
    shapes = {"x": (2, 4, 5, 6), "w": (6, 2, 2, 2), "offset": (2, 16, 5, 3), "b": (6,),
              "mask": (2, 8, 5, 3)}  # fmt: skip
    model = make_model([node], [(name, TensorProto.FLOAT, shape) for name, shape in shapes.items()],
                       [("y", TensorProto.FLOAT, (2, 6, 5, 3))], opset=19)  # fmt: skip
    rng = np.random.default_rng(0)
    feeds = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}
    feeds["offset"] *= 2  # taps land between pixels and outside the image
    (expected,) = ReferenceEvaluator(model).run(None, feeds)
    actual = tvmopt.compile(model).run(feeds)["y"]
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape, attrs", [
    ((2, 3, 6, 7), {"kernel_shape": [3, 2], "strides": [2, 1], "dilations": [1, 2],
                    "pads": [1, 0, 1, 1], "storage_order": 1, "ceil_mode": 1}),
    ((1, 2, 5, 5), {"kernel_shape": [2, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    ((2, 3, 9), {"kernel_shape": [3], "strides": [2], "pads": [1, 1]}),
])  # fmt: skip
def test_max_pool_indices_match_onnx_reference_first_maximum(shape, attrs):
    from onnx.reference import ReferenceEvaluator

    node = helper.make_node("MaxPool", ["x"], ["y", "i"], **attrs)
    dims = [f"d{axis}" for axis in range(len(shape))]  # any shape, of x's rank
    outputs = [("y", TensorProto.FLOAT, dims), ("i", TensorProto.INT64, dims)]
    model = make_model([node], [("x", TensorProto.FLOAT, shape)], outputs)
    x = np.random.default_rng(0).integers(-3, 3, shape).astype(np.float32)  # ties: first wins
    expected = ReferenceEvaluator(model).run(None, {"x": x})
    actual = tvmopt.compile(model).run({"x": x})
    np.testing.assert_array_equal(actual["y"], expected[0])
    np.testing.assert_array_equal(actual["i"], expected[1])


@pytest.mark.parametrize("attrs", [
    {"strides": [3, 2], "output_shape": [10, 8]},  # longer than the full result: zeros at the end
    {"strides": [2, 2], "output_shape": [4, 3], "pads": [1, 0, 0, 0]},  # cropped; pads ignored
    {"strides": [2, 2], "output_shape": [4, 3], "auto_pad": "SAME_UPPER", "group": 2},
    {"strides": [2, 2], "output_shape": [7, 6], "auto_pad": "SAME_LOWER",
     "output_padding": [1, 0], "dilations": [2, 1]},
])  # fmt: skip
def test_conv_transpose_output_shape_places_output_as_onnxruntime(attrs):
    node = helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], **attrs)
    group = attrs.get("group", 1)
    shapes = {"x": (1, 2, 3, 3), "w": (2, 2 // group, 3, 3), "b": (2,)}
    model = make_model([node], [(name, TensorProto.FLOAT, shape) for name, shape in shapes.items()],
                       [("y", TensorProto.FLOAT, ["n", "c", "h", "w"])])  # fmt: skip
    actual = assert_matches_ort(model, tvmopt.compile(model))
    assert actual["y"].shape[2:] == tuple(attrs["output_shape"])


# ai.onnx.ml ops (converters_ml.py, converters_tree_ensemble.py)


def test_tree_ensemble_average_of_two_trees_with_missing_values_matches_the_reference():
    from onnx.reference import ReferenceEvaluator

    def floats(name, values):
        return helper.make_tensor(name, TensorProto.FLOAT, (len(values),), values)

    node = helper.make_node(
        "TreeEnsemble", ["X"], ["Y"], domain="ai.onnx.ml", n_targets=2, aggregate_function=0,
        tree_roots=[0, 2], nodes_featureids=[1, 0, 0],
        nodes_modes=helper.make_tensor("nodes_modes", TensorProto.UINT8, (3,), [3, 5, 1]),
        nodes_splits=floats("nodes_splits", [0.5, 3.0, 0.0]),
        nodes_truenodeids=[0, 1, 3], nodes_trueleafs=[1, 1, 1],
        nodes_falsenodeids=[1, 2, 4], nodes_falseleafs=[0, 1, 1],
        nodes_missing_value_tracks_true=[1, 0, 0], leaf_targetids=[0, 1, 0, 1, 1],
        leaf_weights=floats("leaf_weights", [2, -1.5, 4, 8, 0.5]),
    )  # fmt: skip
    shape = (5, 2)
    model = make_model([node], [("X", TensorProto.FLOAT, shape)], [("Y", TensorProto.FLOAT, shape)],
                       extra_opsets={"ai.onnx.ml": 5})  # fmt: skip
    x = np.array([[3, 0], [-1, np.nan], [np.nan, 0], [3, 0.7], [-2, -1]], np.float32)
    expected = ReferenceEvaluator(model).run(None, {"X": x})[0]
    np.testing.assert_allclose(tvmopt.compile(model).run({"X": x})["Y"], expected, rtol=1e-6)


def test_batch_norm_training_mode_on_float16_data_matches_the_reference():
    from onnx.reference import ReferenceEvaluator

    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y", "rm", "rv"],
                            training_mode=1, momentum=0.8)  # fmt: skip
    stats = [(name, TensorProto.FLOAT16, (3,)) for name in "sbmv"]
    outputs = [("y", TensorProto.FLOAT16, (2, 3, 5)), ("rm", TensorProto.FLOAT16, (3,)),
               ("rv", TensorProto.FLOAT16, (3,))]  # fmt: skip
    model = make_model([node], [("x", TensorProto.FLOAT16, (2, 3, 5)), *stats], outputs, opset=15)
    rng = np.random.default_rng(0)
    feeds = {"x": rng.standard_normal((2, 3, 5)).astype(np.float16) * 4}
    feeds |= {name: rng.uniform(0.5, 2, 3).astype(np.float16) for name in "sbmv"}
    expected = ReferenceEvaluator(model).run(None, feeds)
    got = tvmopt.compile(model).run(feeds)
    for name, want in zip(["y", "rm", "rv"], expected, strict=True):
        np.testing.assert_allclose(got[name].astype(np.float32), want, rtol=5e-3, atol=5e-3)
