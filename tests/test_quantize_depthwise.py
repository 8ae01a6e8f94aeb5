"""The int8 depthwise conv (backends/llvm/kernel_int8_depthwise.py) and its CPU rule
(backends/llvm/rule_int8_depthwise.py): exact integer arithmetic on the fake-quantized input,
channels last or first on either side."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from tvm import te

from tvmopt._tvm import tvm
from tvmopt.backends import resolve_target
from tvmopt.backends.llvm.kernel_int8_depthwise import int8_depthwise_conv2d, pack_depthwise
from tvmopt.backends.llvm.rule_int8_depthwise import Int8Depthwise
from tvmopt.backends.llvm.schedule_util import vector_lanes
from tvmopt.passes.quantize.convert import kernel_constants, quantize_weight
from tvmopt.passes.quantize.observers import qparams_for

from .helpers import conv_case, run_scheduled, torch_conv2d

HOST = resolve_target(None)
AVX2 = tvm.target.Target({"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": "haswell"})

DEPTHWISE = [  # (N, C, H, W, C, kernel, stride, pad, dilation)
    (1, 32, 9, 9, 32, 3, 1, 1, 1),  # MobileNet's 3x3
    (2, 20, 8, 7, 20, 3, 2, 1, 1),  # batch, stride 2, channels padded to 32, odd width
    (1, 16, 10, 10, 16, 5, 1, 4, 2),  # 5x5, dilated
]
LAYOUTS = [("NHWC", "NHWC"), ("NCHW", "NCHW"), ("NCHW", "NHWC")]


def _depthwise_case(shape):
    x, weight, geometry = conv_case(shape)
    return x, np.ascontiguousarray(weight[:, :1]), geometry


def _as(layout: str, nchw: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(nchw.transpose(0, 2, 3, 1)) if layout == "NHWC" else nchw


@pytest.mark.parametrize("target", [HOST, AVX2], ids=["host", "avx2"])
@pytest.mark.parametrize("layouts", LAYOUTS, ids="->".join)
@pytest.mark.parametrize("shape", DEPTHWISE)
def test_int8_depthwise_is_exact_integer_arithmetic(target, layouts, shape):
    x, weight, geometry = _depthwise_case(shape)
    channels, (out_h, out_w) = shape[1], geometry.out_hw
    qparams = qparams_for(float(x.min()), float(x.max()), symmetric=False)
    bias = np.random.default_rng(2).standard_normal(channels)
    pack = partial(pack_depthwise, lanes=vector_lanes(target))
    consts = kernel_constants(weight, qparams, bias, pack)
    arrays = [_as(layouts[0], x), *(v.value.numpy() for v in consts)]
    placeholders = [te.placeholder(a.shape, str(a.dtype)) for a in arrays]
    y = int8_depthwise_conv2d(*placeholders, geometry=geometry, channels=channels,
                              inv_scale=1 / qparams.scale, zero_point=qparams.zero_point,
                              layouts=layouts)  # fmt: skip
    out = run_scheduled(Int8Depthwise(), placeholders, y, arrays, target)
    actual = out if layouts[1] == "NCHW" else out.transpose(0, 3, 1, 2)
    assert actual.shape == (shape[0], channels, out_h, out_w)
    q = np.clip(np.round(x / qparams.scale) + qparams.zero_point, 0, 255) - qparams.zero_point
    wq, w_scale = quantize_weight(weight)
    expected = torch_conv2d(q.astype(np.float64), wq, geometry, groups=channels)
    step = (qparams.scale * w_scale)[None, :, None, None]
    expected = expected * step + bias[None, :, None, None]
    # the bias is rounded to the accumulator's grid: half a step
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=0.5 * step.max() + 1e-5)


def test_weight_packs_channels_innermost_in_whole_vectors():
    weight = np.arange(20 * 9, dtype=np.int8).reshape(20, 1, 3, 3)
    packed = pack_depthwise(weight, 16)
    assert packed.shape == (3, 3, 32)
    assert pack_depthwise(weight, 8).shape == (3, 3, 24)
    np.testing.assert_array_equal(packed[1, 2, :20], weight[:, 0, 1, 2])
    assert not packed[..., 20:].any()
