"""The channels-last layout pass (backends/llvm/conv_channels_last.py), structurally: each float
conv becomes a call of its NHWC kernel (direct, Winograd or depthwise) on the packed weight, the
permutes between convs cancel, and models it must leave alone stay as they are. Each rewrite
also computes what the module before it did."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from tvm import relax

from tvmopt._tvm import tvm
from tvmopt.backends.llvm import kernel_winograd
from tvmopt.backends.llvm.conv_channels_last import ConvChannelsLast
from tvmopt.backends.llvm.kernel_conv_nhwc import conv2d_nhwc, pack_weight
from tvmopt.backends.llvm.kernel_depthwise_nhwc import depthwise_conv2d_nhwc
from tvmopt.backends.llvm.kernel_int8_depthwise import pack_depthwise
from tvmopt.passes.conv_geometry import ConvGeometry

from .passes_helpers import const, f32, module, run_relax

RNG = np.random.default_rng(0)
X = (1, 8, 16, 16)
POINTWISE = RNG.standard_normal((16, 8, 1, 1)).astype(np.float32)
BIAS = RNG.standard_normal((1, 16, 1, 1)).astype(np.float32)
CONV3X3 = RNG.standard_normal((16, 16, 3, 3)).astype(np.float32)
DEPTHWISE = RNG.standard_normal((16, 1, 3, 3)).astype(np.float32)
NCHW = [0, 3, 1, 2]  # NHWC -> NCHW
SAME_16 = ConvGeometry((3, 3), (1, 1), (1, 1), (1, 1), (16, 16))
LANES = 8  # panels of 8 channels (AVX2's vector; the pass takes the target's from cpu.py)


def _pointwise_relu(bb, x):
    """conv 1x1 + bias + relu, NCHW, as the graph passes leave it."""
    conv = bb.emit(relax.op.nn.conv2d(x, const(POINTWISE)))
    return bb.emit(relax.op.nn.relu(bb.emit(relax.op.add(conv, const(BIAS)))))


def _second_conv(weight, groups=1):
    def body(bb, x):
        return relax.op.nn.conv2d(_pointwise_relu(bb, x), const(weight), padding=[1, 1],
                                  groups=groups)  # fmt: skip

    return body


def _nhwc_pointwise_relu(bb, x):
    """The expected first layer: the image read NCHW by the NHWC kernel, the bias folded in."""
    kernel = partial(conv2d_nhwc, geometry=ConvGeometry(out_hw=(16, 16)), channels=16,
                     channels_last=False)  # fmt: skip
    packed, bias = const(pack_weight(POINTWISE, LANES)), const(BIAS.reshape(-1))
    conv = bb.emit(bb.call_te(kernel, x, packed, bias, primfunc_name_hint="conv2d_nhwc"))
    return bb.emit(relax.op.nn.relu(conv))


def _expected(second_kernel, packed):
    """The first layer, then `second_kernel` reading its NHWC output directly (the permutes in
    between cancelled), then one permute back to NCHW."""

    def body(bb, x):
        y = _nhwc_pointwise_relu(bb, x)
        z = bb.emit(bb.call_te(second_kernel, y, const(packed),
                               primfunc_name_hint=second_kernel.func.__name__))  # fmt: skip
        return relax.op.permute_dims(z, NCHW)

    return module({"x": f32(*X)}, body)


def _assert_same_values(before, after):
    x = RNG.standard_normal(X).astype(np.float32)
    np.testing.assert_allclose(run_relax(after, x), run_relax(before, x), rtol=1e-4, atol=1e-4)


def test_3x3_conv_on_a_16x16_map_takes_winograd():
    before = module({"x": f32(*X)}, _second_conv(CONV3X3))
    kernel = partial(kernel_winograd.conv2d_winograd, geometry=SAME_16, channels=16,
                     tile=kernel_winograd.DEFAULT_TILE, bias=None)  # fmt: skip
    packed = kernel_winograd.transform_weight(CONV3X3, kernel_winograd.DEFAULT_TILE, LANES)
    after = ConvChannelsLast(lanes=LANES)(before)
    tvm.ir.assert_structural_equal(after, _expected(kernel, packed))
    _assert_same_values(before, after)


def test_without_winograd_every_conv_is_direct():
    before = module({"x": f32(*X)}, _second_conv(CONV3X3))
    kernel = partial(conv2d_nhwc, geometry=SAME_16, channels=16, channels_last=True, bias=None)
    after = ConvChannelsLast(winograd=False, lanes=LANES)(before)
    tvm.ir.assert_structural_equal(after, _expected(kernel, pack_weight(CONV3X3, LANES)))
    _assert_same_values(before, after)


def test_depthwise_conv_takes_the_depthwise_kernel():
    before = module({"x": f32(*X)}, _second_conv(DEPTHWISE, groups=16))
    kernel = partial(depthwise_conv2d_nhwc, geometry=SAME_16, channels=16, channels_last=True,
                     bias=None)  # fmt: skip
    after = ConvChannelsLast(lanes=LANES)(before)
    tvm.ir.assert_structural_equal(after, _expected(kernel, pack_depthwise(DEPTHWISE, LANES)))
    _assert_same_values(before, after)


def _concat_of_convs(bb, x):
    """Two convs concatenated on channels, then a third (DenseNet's, Inception's and
    SqueezeNet's shape): the permutes sink through the concat and cancel."""
    left = _pointwise_relu(bb, x)
    right = bb.emit(relax.op.nn.conv2d(x, const(POINTWISE)))
    joined = bb.emit(relax.op.concat([left, right], axis=1))
    return relax.op.nn.conv2d(joined, const(CONV3X3[:, :, :1, :1].repeat(2, axis=1)))


def test_convs_around_a_concat_run_channels_last():
    before = module({"x": f32(*X)}, _concat_of_convs)
    after = ConvChannelsLast(lanes=LANES)(before)
    ops = [b.value.op.name for block in after["main"].body.blocks for b in block.bindings
           if isinstance(b.value, relax.Call)]  # fmt: skip
    assert ops.count("relax.permute_dims") == 1  # the output: the first convs read NCHW x as is
    _assert_same_values(before, after)


def _softmax_between_convs(bb, x):
    """Convs with an op between each that no permute sinks through: a transpose pair each."""
    square = RNG.standard_normal((16, 16, 1, 1)).astype(np.float32)
    for weight in (POINTWISE, square, square):
        x = bb.emit(relax.op.nn.softmax(bb.emit(relax.op.nn.conv2d(x, const(weight))), 1))
    return x


@pytest.mark.parametrize(
    "body",
    [_second_conv(RNG.standard_normal((16, 4, 3, 3)).astype(np.float32), groups=4),
     _softmax_between_convs],
    ids=["grouped-conv-of-4-outputs", "softmax-between-convs"],
)  # fmt: skip
def test_models_it_would_slow_down_stay_nchw(body):
    before = module({"x": f32(*X)}, body)
    tvm.ir.assert_structural_equal(ConvChannelsLast(lanes=LANES)(before), before)


def test_grouped_conv_whose_groups_fill_panels_goes_channels_last():
    """2 groups of 8 outputs fill AVX2's panels: the grouped NHWC kernel (4 groups of 4 above
    would be half padding); the module computes what it did."""
    before = module({"x": f32(*X)}, _second_conv(CONV3X3[:, :8].copy(), groups=2))
    after = ConvChannelsLast(lanes=LANES)(before)
    assert "group_conv2d_nhwc" in [gvar.name_hint for gvar in after.get_global_vars()]
    x = RNG.standard_normal(X).astype(np.float32)
    np.testing.assert_allclose(run_relax(after, x), run_relax(before, x), rtol=1e-4, atol=1e-4)
