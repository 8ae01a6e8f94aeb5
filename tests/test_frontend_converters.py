"""Our ONNX converters: Clip with constant bounds imports as one relax.clip, which fuses into
the convolution before it; other Clips keep TVM's conversion; a variadic Sum imports as pairwise
adds. Checked against ONNX Runtime."""

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
