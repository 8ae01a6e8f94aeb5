"""A pointwise conv's GEMM over a flattened map whose own register tile holds fewer accumulators
than the FMA units need (cpu.FMA_CHAINS) pads its positions to a tile two panels wide
(padded_positions.flat_positions): AVX2's 7x7 maps. The choice, the kernel's registers, and
EfficientNet's 7x7 convs with SiLU against ONNX Runtime on both builds."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from tvm import te

import tvmopt
from tvmopt.backends import resolve_target
from tvmopt.backends.llvm.cpu import cpu_of
from tvmopt.backends.llvm.kernel_conv_nhwc import conv2d_nhwc, gemm_positions
from tvmopt.backends.llvm.padded_positions import flat_positions
from tvmopt.backends.llvm.rule_conv_nhwc import Conv2dNHWC
from tvmopt.passes.conv_geometry import ConvGeometry

from .helpers import assert_matches_ort, make_model
from .test_register_tiles import ISAS, _assembly, _inner_loop_spills

AVX2, AVX512 = 12, 15  # accumulator budgets (cpu.py)
SEVEN = ConvGeometry((1, 1), (1, 1), (0, 0), (1, 1), (7, 7))


def test_seven_by_seven_pads_to_six_by_two_on_avx2_only():
    assert flat_positions(49, 24, AVX2) == 54  # 192 channels: 7 x 1 -> 6 x 2
    assert flat_positions(49, 29, AVX2) == 49  # odd panels: only 12 x 1 over clamped rows
    assert flat_positions(49, 12, AVX512) == 49  # AVX-512's 7 x 2 holds 14
    assert flat_positions(784, 8, AVX2) == 784  # ShuffleNetV2's 58 channels on 28x28: 8 already
    assert flat_positions(196, 15, AVX2) == 196  # its 116 on 14x14: one panel wide
    assert flat_positions(169, 125, AVX2) == 180  # padded_positions' 13x13 case stays


def test_windowed_convs_keep_their_rows():
    three = ConvGeometry((3, 3), (1, 1), (1, 1), (1, 1), (7, 7))
    assert gemm_positions(three, 24, AVX2) is None
    assert gemm_positions(SEVEN, 24, AVX2) == 54


def test_padded_seven_by_seven_fits_avx2_registers():
    target = resolve_target(ISAS["avx2"])
    lanes = cpu_of(target).lanes()
    x, w = te.placeholder((1, 7, 7, 1152)), te.placeholder((192 // lanes, 1, 1, 1152, lanes))
    y = conv2d_nhwc(x, w, None, geometry=SEVEN, channels=192, accumulators=AVX2)
    assert [int(d) for d in y.op.input_tensors[0].shape][:3] == [1, 1, 54]  # the GEMM: padded
    assert _inner_loop_spills(_assembly(Conv2dNHWC(), [x, w, y], target=target), "x86_64") == 0


def _stage(channels: int, expanded: int):
    """EfficientNet's 7x7 block ends: 1x1 expand + SiLU, 1x1 project + residual."""
    rng = np.random.default_rng(0)
    inits = {
        "w1": (rng.standard_normal((expanded, channels, 1, 1)) / channels**0.5),
        "b1": 0.1 * rng.standard_normal(expanded),
        "w2": (rng.standard_normal((channels, expanded, 1, 1)) / expanded**0.5),
        "b2": 0.1 * rng.standard_normal(channels),
    }
    node = helper.make_node
    nodes = [node("Conv", ["x", "w1", "b1"], ["e"]), node("Sigmoid", ["e"], ["s"]),
             node("Mul", ["e", "s"], ["m"]), node("Conv", ["m", "w2", "b2"], ["p"]),
             node("Add", ["p", "x"], ["y"])]  # fmt: skip
    shape = [1, channels, 7, 7]
    inits = {name: value.astype(np.float32) for name, value in inits.items()}
    return make_model(nodes, [("x", TensorProto.FLOAT, shape)], [("y", TensorProto.FLOAT, shape)],
                      inits)  # fmt: skip


@pytest.mark.parametrize("isa", ["avx2", "host"])
@pytest.mark.parametrize(("channels", "expanded"), [(192, 1152), (40, 232)])
def test_seven_by_seven_stage_matches_onnxruntime(isa, channels, expanded):
    model = _stage(channels, expanded)
    target = ISAS["avx2"] if isa == "avx2" else None
    assert_matches_ort(model, tvmopt.compile(model, target=target) if target else
                       tvmopt.compile(model))  # fmt: skip
