"""SqueezeNet's shapes on the CPU: 13x13 maps whose positions divide badly into register tiles
(backends/llvm/padded_positions.py), channels-last concats of the expand convs
(concat_in_chunks.py) and the global pool's mean over H and W (rule_reduce_outer.py): each
kernel against torch or numpy, and a fire-module network against ONNX Runtime."""

from __future__ import annotations

import re

import numpy as np
import pytest
from onnx import TensorProto, helper
from tvm import te, topi

import tvmopt
from tvmopt._tvm import tvm
from tvmopt.backends import resolve_target
from tvmopt.backends.llvm import kernel_conv_nhwc as conv_nhwc
from tvmopt.backends.llvm.concat_in_chunks import concat_in_chunks
from tvmopt.backends.llvm.padded_positions import padded_positions
from tvmopt.backends.llvm.rule_fallback import Fallback
from tvmopt.backends.llvm.rule_reduce_outer import ReduceOuterAxes

from .helpers import (
    assert_matches_ort,
    check_nhwc_conv,
    conv_case,
    make_model,
    run_scheduled,
)

HOST = resolve_target(None)
AVX2 = resolve_target({"kind": "llvm", "mcpu": "haswell"})
AVX2_BUDGET = 12  # accumulators of an AVX2 register tile (cpu.py)


def test_padded_positions_fill_the_register_tile():
    assert padded_positions(169, 125, AVX2_BUDGET) == 180  # 13x13, 1000 channels: 12 x 1
    assert padded_positions(169, 24, AVX2_BUDGET) == 174  # 192 channels: 6 x 2
    assert padded_positions(13, 24, AVX2_BUDGET) == 15  # a 3x3 conv's 13 columns: 5 x 2
    assert padded_positions(49, 64, AVX2_BUDGET) == 49  # 7x7's 7 x 1 holds over half
    assert padded_positions(3025, 8, AVX2_BUDGET) == 3025  # 55x55: 5 x 2
    assert padded_positions(169, 125, 15) == 169  # AVX-512: 13 x 1 of 15


CONVS = [  # (N, C, H, W, OC, kernel, stride, pad, dilation): 13x13 maps, as SqueezeNet's last
    (1, 32, 13, 13, 40, 1, 1, 0, 1),  # pointwise, 5 panels on AVX2 (odd): positions to 180
    (1, 16, 13, 13, 48, 3, 1, 1, 1),  # 3x3: its 13 columns flattened with the rows, padded
    (2, 8, 13, 11, 24, 3, 2, 1, 1),  # strided, a batch of 2: 7x6 outputs per image
]


@pytest.mark.parametrize("target", [HOST, AVX2], ids=["host", "avx2"])
@pytest.mark.parametrize("shape", CONVS)
def test_padded_conv_matches_torch(target, shape):
    check_nhwc_conv(shape, target)


def test_13x13_conv_gemm_runs_over_padded_positions():
    """SqueezeNet's 512->1000 conv on 13x13, on AVX2: 180 positions in tiles of 12, not 169
    positions one at a time."""
    geometry = conv_case((1, 512, 13, 13, 1000, 1, 1, 0, 1))[2]
    assert conv_nhwc.gemm_positions(geometry, 125, AVX2_BUDGET) == 180
    assert conv_nhwc.gemm_positions(geometry, 125, 0) == 169  # no budget: as before


def _scheduled_script(rule, tensors, target=HOST) -> str:
    func = te.create_prim_func(tensors).with_attr("global_symbol", "main")
    scheduled = rule.apply(func, target, False)
    assert scheduled is not None, f"{type(rule).__name__} did not fire"
    return scheduled.mod.script()


@pytest.mark.parametrize("shape", [(1, 13, 13, 1000), (2, 5, 5, 12), (1, 7, 7, 20)])
def test_channels_last_mean_vectorizes_over_channels(shape):
    x = te.placeholder(shape)
    total = topi.sum(x, axis=[1, 2], keepdims=True)
    y = te.compute(total.shape, lambda *i: total(*i) / 4.0, name="T_divide")
    script = _scheduled_script(ReduceOuterAxes(), [x, y])
    assert re.search(r"for k1, k2 in T.grid", script) and "T.vectorized" in script
    data = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    out = run_scheduled(ReduceOuterAxes(), [x], y, [data], HOST)
    np.testing.assert_allclose(out, data.sum(axis=(1, 2), keepdims=True) / 4, rtol=1e-5, atol=1e-5)


def test_reduction_over_the_innermost_axis_is_left_to_others():
    """A row sum (LayerNorm's) reads its innermost axis in the reduction: no vectors of kept
    elements to sum."""
    x = te.placeholder((4, 64))
    func = te.create_prim_func([x, topi.sum(x, axis=[1])]).with_attr("global_symbol", "main")
    assert ReduceOuterAxes().apply(func, HOST, False) is None


CONCATS = [  # (input shapes, axis)
    ([(1, 55, 55, 64), (1, 55, 55, 64)], 3),  # SqueezeNet's fire 2 and 3
    ([(1, 7, 7, 32), (1, 7, 7, 64), (1, 7, 7, 32)], 3),  # three inputs, chunk 32
    ([(2, 16, 5, 5), (2, 48, 5, 5)], 1),  # NCHW, a batch
]


@pytest.mark.parametrize(("shapes", "axis"), CONCATS)
def test_concat_in_chunks_matches_numpy_and_vectorizes(shapes, axis):
    inputs = [te.placeholder(shape) for shape in shapes]
    chunk = int(np.gcd.reduce([shape[axis] for shape in shapes]))
    y = concat_in_chunks(inputs, axis, chunk)
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(shape).astype(np.float32) for shape in shapes]
    out = run_scheduled(Fallback(), inputs, y, arrays, AVX2)
    np.testing.assert_array_equal(out, np.concatenate(arrays, axis=axis))
    if axis == len(shapes[0]) - 1:  # channels last: whole vectors copied, no scalar move
        func = te.create_prim_func([*inputs, y]).with_attr("global_symbol", "main")
        asm = tvm.compile(Fallback().apply(func, AVX2, False).mod, target=AVX2)
        assert "vmovss" not in asm.mod.inspect_source("asm")


def _fire(x: str, squeeze: int, expand: int, name: str, weights: dict) -> list:
    """SqueezeNet's fire module: a 1x1 squeeze, then 1x1 and 3x3 expands concatenated."""
    rng = np.random.default_rng(len(weights))
    channels = weights[f"{x}_channels"] if f"{x}_channels" in weights else 16
    shapes = {"s": (squeeze, channels, 1, 1), "e1": (expand, squeeze, 1, 1),
              "e3": (expand, squeeze, 3, 3)}  # fmt: skip
    for key, shape in shapes.items():
        weights[f"{name}_{key}"] = rng.standard_normal(shape).astype(np.float32) * 0.2
    weights[f"{name}_channels"] = 2 * expand
    conv = helper.make_node
    return [
        conv("Conv", [x, f"{name}_s"], [f"{name}_sq"]),
        conv("Relu", [f"{name}_sq"], [f"{name}_sr"]),
        conv("Conv", [f"{name}_sr", f"{name}_e1"], [f"{name}_a"]),
        conv("Relu", [f"{name}_a"], [f"{name}_ar"]),
        conv("Conv", [f"{name}_sr", f"{name}_e3"], [f"{name}_b"], pads=[1, 1, 1, 1]),
        conv("Relu", [f"{name}_b"], [f"{name}_br"]),
        conv("Concat", [f"{name}_ar", f"{name}_br"], [f"{name}"], axis=1),
    ]


def _squeezenet_tail():
    """Two fire modules on a 13x13 map, a 1x1 conv to 40 classes, the global pool."""
    weights = {"x_channels": 16}
    nodes = _fire("x", 8, 32, "fire1", weights) + _fire("fire1", 16, 32, "fire2", weights)
    weights["head"] = np.random.default_rng(9).standard_normal((40, 64, 1, 1)).astype(np.float32)
    nodes += [helper.make_node("Conv", ["fire2", "head"], ["logits"]),
              helper.make_node("Relu", ["logits"], ["r"]),
              helper.make_node("GlobalAveragePool", ["r"], ["y"])]  # fmt: skip
    initializers = {k: v for k, v in weights.items() if not k.endswith("_channels")}
    return make_model(nodes, [("x", TensorProto.FLOAT, [1, 16, 13, 13])],
                      [("y", TensorProto.FLOAT, [1, 40, 1, 1])], initializers)  # fmt: skip


def test_fire_modules_match_onnxruntime_with_their_kernels_channels_last():
    model = _squeezenet_tail()
    compiled = tvmopt.compile(model)
    assert_matches_ort(model, compiled)
    rules = {name: k["rule"] for name, k in compiled.metadata.extra["kernels"].items()}
    assert [r for n, r in rules.items() if "conv2d" in n] == ["Conv2dNHWC"] * 7, rules
    assert [r for n, r in rules.items() if n.startswith("mean")] == ["ReduceOuterAxes"], rules
    assert rules["concatenate"] == "Fallback", rules  # both concats: one kernel, no transpose
    assert not [n for n in rules if "transpose" in n], rules
