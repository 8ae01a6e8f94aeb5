"""What makes the CPU kernels' inner loops fast, checked in the code they compile to: register
tiles that are neither heap-allocated per iteration (schedule_util.REGISTER_SCOPE) nor too big
for the registers, and requantization that rounds in vectors (passes/vector_round.py)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from tvm import te, tirx

import tvmopt
from tvmopt._tvm import tvm
from tvmopt.backends import resolve_target
from tvmopt.backends.llvm.kernel_conv_nhwc import conv2d_nhwc
from tvmopt.backends.llvm.kernel_int8_gemm import int8_conv2d
from tvmopt.backends.llvm.panel_gemm import PanelTiles
from tvmopt.backends.llvm.rule_conv_nhwc import Conv2dNHWC
from tvmopt.backends.llvm.rule_int8_gemm import Int8Gemm
from tvmopt.backends.llvm.rule_matmul import Matmul
from tvmopt.backends.llvm.schedule_util import REGISTER_VECTORS
from tvmopt.passes.conv_geometry import ConvGeometry
from tvmopt.passes.vector_round import round_te

from .helpers import assert_matches_ort, make_model

HOST = resolve_target(None)
POINTWISE = ConvGeometry((1, 1), (1, 1), (0, 0), (1, 1), (28, 28))


def _requantized(y):
    """An int8 layer's epilogue as requantize.py writes it and the CPU pipeline legalizes it:
    scale, round, zero point, clip."""
    scaled = te.compute(y.shape, lambda *i: y(*i) * 3.0, name="scale")
    rounded = round_te(scaled)
    return te.compute(
        y.shape,
        lambda *i: tirx.Cast("uint8", tirx.max(tirx.min(rounded(*i) + 7.0, 255.0), 0.0)),
        name="requantize",
    )


def _int8_pointwise(channels=32):
    x = te.placeholder((1, 28, 28, 32), "uint8")
    w = te.placeholder((channels // 16, 1, 1, 8, 16, 4), "int8")
    correction, scale = te.placeholder((channels,), "int32"), te.placeholder((channels,), "float32")
    y = int8_conv2d(x, w, correction, scale, geometry=POINTWISE, channels=channels,
                    inv_scale=1.0, zero_point=0)  # fmt: skip
    return Int8Gemm(), [x, w, correction, scale, _requantized(y)]


def _float_pointwise():
    x, w = te.placeholder((1, 28, 28, 32), "float32"), te.placeholder((2, 1, 1, 32, 16))
    bias = te.placeholder((32,))
    y = conv2d_nhwc(x, w, bias, geometry=POINTWISE, channels=32)
    return Conv2dNHWC(), [x, w, bias, y]


def _matmul():
    a, b = te.placeholder((64, 96)), te.placeholder((96, 64))
    k = te.reduce_axis((0, 96), name="k")
    y = te.compute((64, 64), lambda i, j: te.sum(a[i, k] * b[k, j], axis=k), name="matmul")
    return Matmul(), [a, b, y]


def _assembly(rule, tensors) -> str:
    func = te.create_prim_func(tensors).with_attr("global_symbol", "main")
    scheduled = rule.apply(func, HOST, False)
    assert scheduled is not None, f"{type(rule).__name__} did not fire"
    return tvm.compile(scheduled.mod, target=HOST).mod.inspect_source("asm")


@pytest.mark.parametrize("kernel", [_int8_pointwise, _float_pointwise, _matmul])
def test_register_tiles_are_not_allocated_per_tile(kernel):
    # these kernels have no intermediate buffer: any workspace call would be the register tile's,
    # made at every iteration of the parallel loop
    assert "TVMBackendAllocWorkspace" not in _assembly(*kernel())


@pytest.mark.parametrize("channels", [16, 32])
def test_requantizing_epilogue_is_vectorized(channels):
    # a scalarized epilogue converts each lane on its own: 16 cvtsi2ss per vector
    assembly = _assembly(*_int8_pointwise(channels))
    assert "cvtsi2ss" not in assembly and "cvttss2si" not in assembly


def test_default_panel_tiles_fit_in_the_registers():
    rows, chunks = PanelTiles().rows, PanelTiles().chunks
    assert min(rows, REGISTER_VECTORS // chunks) * chunks <= REGISTER_VECTORS < 16


def _requantize_model():
    """uint8(clip(round(x * 2.5) + 7, 0, 255)), as float: requantize.py's arithmetic. x * 2.5
    lands on many exact halves, which ONNX rounds to even."""
    nodes = [
        helper.make_node("Mul", ["x", "k"], ["m"]),
        helper.make_node("Round", ["m"], ["r"]),
        helper.make_node("Add", ["r", "zero_point"], ["s"]),
        helper.make_node("Clip", ["s", "low", "high"], ["c"]),
        helper.make_node("Cast", ["c"], ["q"], to=TensorProto.UINT8),
        helper.make_node("Cast", ["q"], ["y"], to=TensorProto.FLOAT),
    ]
    constants = {"k": 2.5, "zero_point": 7.0, "low": 0.0, "high": 255.0}
    return make_model(
        nodes,
        [("x", TensorProto.FLOAT, [4, 64])],
        [("y", TensorProto.FLOAT, [4, 64])],
        {name: np.float32(value) for name, value in constants.items()},
    )


def test_round_legalized_for_vectors_still_rounds_halves_to_even():
    x = (np.arange(256, dtype=np.float32).reshape(4, 64) - 128) / 5  # x * 2.5: every n + 0.5
    model = tvmopt.compile(_requantize_model())
    assert_matches_ort(_requantize_model(), model, {"x": x}, tolerance=0)
