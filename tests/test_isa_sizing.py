"""Kernels sized from the target's ISA where ShuffleNetV2's channel counts (58, 116, 232) divide
badly into AVX-512's 16 lanes: a pointwise conv's odd panel count made even rather than its
positions padded (padded_positions.padded_panels), and a concat of 116-channel rows copied in
vectors that stay within a row (rule_fallback._vector_width). Each kernel on both builds
against torch or numpy, and a ShuffleNet-shaped model against ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from tvm import te

import tvmopt
from tvmopt._tvm import tvm
from tvmopt.backends import resolve_target
from tvmopt.backends.cpu_features import host_features
from tvmopt.backends.llvm import kernel_conv_nhwc as conv_nhwc
from tvmopt.backends.llvm.concat_in_chunks import concat_in_chunks
from tvmopt.backends.llvm.cpu import cpu_of
from tvmopt.backends.llvm.padded_positions import padded_panels
from tvmopt.backends.llvm.rule_fallback import Fallback

from .helpers import assert_matches_ort, check_nhwc_conv, conv_case, make_model, run_scheduled

AVX512 = resolve_target({"kind": "llvm", "mcpu": "x86-64-v4"})
AVX2 = resolve_target({"kind": "llvm", "mcpu": "x86-64-v3"})
RUNS_AVX512 = "avx512bw" in (host_features() or ())
TARGETS = pytest.mark.parametrize("target", [
    pytest.param(AVX512, marks=pytest.mark.skipif(not RUNS_AVX512, reason="no AVX-512 here")),
    AVX2], ids=["avx512", "avx2"])  # fmt: skip


def test_odd_panels_become_even_where_positions_would_be_padded():
    assert padded_panels(49, 15, 15) == 16  # 232 channels on 7x7, AVX-512: 7 x 2, not 13 x 1
    assert padded_panels(49, 29, 12) == 29  # the same on AVX2: its 7 x 1 fills over half
    assert padded_panels(25, 7, 12) == 8  # 56 channels on 5x5, AVX2: 5 x 2
    assert padded_panels(196, 15, 15) == 15  # 14x14: 14 x 1 fills the tile already
    assert padded_panels(49, 3, 15) == 3  # a fourth panel would be a third more work
    assert padded_panels(169, 125, 12) == 125  # 13x13: an even count tiles it no better


CONVS = [  # (N, C, H, W, OC, kernel, stride, pad, dilation)
    (1, 24, 7, 7, 232, 1, 1, 0, 1),  # ShuffleNetV2's stage 4: 15 panels on AVX-512 -> 16
    (1, 16, 5, 5, 56, 1, 1, 0, 1),  # 7 panels on AVX2 -> 8
    (1, 8, 5, 9, 120, 3, 1, 1, 1),  # 3x3 over 9 columns: 15 panels on AVX-512
    (1, 24, 28, 28, 116, 1, 1, 0, 1),  # stage 3: a partial last vector, AVX2's tile 7 x 1
]


@TARGETS
@pytest.mark.parametrize("shape", CONVS)
def test_conv_over_even_panels_matches_torch(target, shape):
    geometry, cpu = conv_case(shape)[2], cpu_of(target)
    check_nhwc_conv(shape, target, conv_nhwc.weight_panels(geometry, shape[4], cpu.lanes(),
                                                           cpu.accumulators))  # fmt: skip


def test_stage_4_conv_packs_sixteen_panels_on_avx512_only():
    geometry = conv_case(CONVS[0])[2]
    assert conv_nhwc.weight_panels(geometry, 232, 16, cpu_of(AVX512).accumulators) == 16
    assert conv_nhwc.weight_panels(geometry, 232, 8, cpu_of(AVX2).accumulators) == 29
    assert conv_nhwc.weight_panels(geometry, 232, 16, 0) == 15  # no budget: whole panels only


@TARGETS
@pytest.mark.parametrize("channels", [58, 116, 232])
def test_concat_of_rows_lanes_do_not_divide_copies_whole_vectors(target, channels):
    shapes = [(1, 6, 5, channels), (1, 6, 5, channels)]
    inputs = [te.placeholder(shape) for shape in shapes]
    y = concat_in_chunks(inputs, 3, channels)
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(shape).astype(np.float32) for shape in shapes]
    out = run_scheduled(Fallback(), inputs, y, arrays, target)
    np.testing.assert_array_equal(out, np.concatenate(arrays, axis=3))
    func = te.create_prim_func([*inputs, y]).with_attr("global_symbol", "main")
    asm = tvm.compile(Fallback().apply(func, target, False).mod, target=target)
    source = asm.mod.inspect_source("asm")
    assert "vgather" not in source and "vmovss" not in source


def _shuffle_stage(channels: int, size: int):
    """Two pointwise convs of `channels`, concatenated and fed to a third: ShuffleNetV2's
    stage shapes, channels not a multiple of 16."""
    rng = np.random.default_rng(0)
    initializers = {
        "w": (rng.standard_normal((channels, channels, 1, 1)) * 0.1).astype(np.float32),
        "w2": (rng.standard_normal((channels, 2 * channels, 1, 1)) * 0.1).astype(np.float32),
    }
    node = helper.make_node
    nodes = [node("Conv", ["x", "w"], ["a"]), node("Conv", ["x", "w"], ["b0"]),
             node("Relu", ["b0"], ["b"]), node("Concat", ["a", "b"], ["c"], axis=1),
             node("Conv", ["c", "w2"], ["y"])]  # fmt: skip
    shape = [1, channels, size, size]
    return make_model(nodes, [("x", TensorProto.FLOAT, shape)],
                      [("y", TensorProto.FLOAT, shape)], initializers)  # fmt: skip


@TARGETS
@pytest.mark.parametrize(("channels", "size"), [(232, 7), (116, 14)])
def test_shufflenet_stage_matches_onnxruntime(target, channels, size):
    model = _shuffle_stage(channels, size)
    assert_matches_ort(model, tvmopt.compile(model, target=target))


def test_partial_last_vector_keeps_the_tile_in_registers():
    # 116 channels on 28x28: AVX2's 8 x 1 tile crossed image rows, and with the predicated
    # write-out TVM allocated the accumulators whole, per task (panel_gemm._rows_within_image_rows)
    from tvmopt.backends.llvm.rule_conv_nhwc import Conv2dNHWC

    from .test_register_tiles import _assembly

    geometry = conv_case(CONVS[-1])[2]
    x, w = te.placeholder((1, 28, 28, 24)), te.placeholder((15, 1, 1, 24, 8))
    y = conv_nhwc.conv2d_nhwc(x, w, None, geometry=geometry, channels=116,
                              accumulators=cpu_of(AVX2).accumulators)  # fmt: skip
    assert "TVMBackendAllocWorkspace" not in _assembly(Conv2dNHWC(), [x, w, y], target=AVX2)
