"""SiLU as x times one rational function (passes/fast_logistic.py): its float32 error
everywhere, and EfficientNet's conv + SiLU and squeeze-excite gates against ONNX Runtime in
both x86 builds."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

import tvmopt
from tvmopt.passes.fast_logistic import CLAMP, DENOMINATOR, NUMERATOR, horner

from .helpers import assert_matches_ort, make_model

TARGETS = {"avx2": {"kind": "llvm", "mcpu": "x86-64-v3"}, "host": None}


def _rational_in_float32(x: np.ndarray) -> np.ndarray:
    v = np.clip(x, -CLAMP, CLAMP)
    squared = v * v
    numerator = horner([np.float32(c) for c in NUMERATOR], squared)
    return v * numerator / horner([np.float32(c) for c in DENOMINATOR], squared) + np.float32(0.5)


def test_rational_logistic_is_within_4e_7_everywhere():
    x = np.concatenate([np.linspace(-40, 40, 800_001), [-1e30, -88.0, 0.0, 88.0, 1e30]])
    x = x.astype(np.float32)
    exact = 0.5 * (1 + np.tanh(x.astype(np.float64) / 2))  # no overflow at -1e30
    assert np.abs(_rational_in_float32(x) - exact).max() < 4e-7


def test_rational_logistic_is_odd_about_one_half():
    x = np.linspace(0, 30, 10_001, dtype=np.float32)
    np.testing.assert_allclose(_rational_in_float32(x) + _rational_in_float32(-x), 1, atol=1e-7)


def _conv(name, x, channels, kernel, stride=1, group=1, rng=None):
    fan_in = channels // group * kernel * kernel
    weight = rng.standard_normal((channels, channels // group, kernel, kernel)) / fan_in**0.5
    inits = {f"{name}_w": weight.astype(np.float32),
             f"{name}_b": (0.1 * rng.standard_normal(channels)).astype(np.float32)}  # fmt: skip
    node = helper.make_node("Conv", [x, *inits], [name], group=group, pads=[kernel // 2] * 4,
                            strides=[stride] * 2)  # fmt: skip
    return node, inits


def _silu(x):
    return [helper.make_node("Sigmoid", [x], [f"{x}_s"]),
            helper.make_node("Mul", [x, f"{x}_s"], [f"{x}_silu"])], f"{x}_silu"  # fmt: skip


def _mbconv(channels: int, size: int, kernel: int, stride: int):
    """Pointwise conv + SiLU, depthwise conv + SiLU, a squeeze-excite gate (sigmoid)."""
    rng, nodes, inits = np.random.default_rng(0), [], {}
    for node, weights in [
        _conv("pw", "x", channels, 1, rng=rng),
        _conv("dw", "pw_silu", channels, kernel, stride, channels, rng=rng),
    ]:
        nodes.append(node)
        inits |= weights
        activation, _ = _silu(node.output[0])
        nodes += activation
    nodes += [helper.make_node("GlobalAveragePool", ["dw_silu"], ["pool"]),
              helper.make_node("Sigmoid", ["pool"], ["gate"]),
              helper.make_node("Mul", ["dw_silu", "gate"], ["y"])]  # fmt: skip
    out = (size - 1) // stride + 1
    return make_model(nodes, [("x", TensorProto.FLOAT, [1, channels, size, size])],
                      [("y", TensorProto.FLOAT, [1, channels, out, out])], inits)  # fmt: skip


@pytest.mark.parametrize("isa", TARGETS)
@pytest.mark.parametrize(("channels", "size", "kernel", "stride"),
                         [(24, 15, 5, 2), (40, 14, 3, 1), (16, 9, 5, 1)])  # fmt: skip
def test_conv_silu_and_gates_match_onnxruntime(isa, channels, size, kernel, stride):
    model = _mbconv(channels, size, kernel, stride)
    target = TARGETS[isa]
    compiled = tvmopt.compile(model, target=target) if target else tvmopt.compile(model)
    feeds = {"x": np.random.default_rng(1).uniform(-20, 20, (1, channels, size, size))}
    assert_matches_ort(model, compiled, feeds={"x": feeds["x"].astype(np.float32)})
