"""Float depthwise convs channels last: the kernel (backends/llvm/kernel_depthwise_nhwc.py) and its
schedule rule against torch's conv2d, and a MobileNet-shaped CNN that now runs channels last from
its first conv to its global pool, against ONNX Runtime."""

from __future__ import annotations

import re

import numpy as np
import pytest
from tvm import te

import tvmopt
from tvmopt.backends import resolve_target
from tvmopt.backends.llvm.kernel_depthwise_nhwc import depthwise_conv2d_nhwc
from tvmopt.backends.llvm.kernel_int8_depthwise import pack_depthwise
from tvmopt.backends.llvm.rule_depthwise_nhwc import DepthwiseNHWC
from tvmopt.backends.llvm.schedule_util import vector_lanes

from .helpers import assert_matches_ort, inverted_residual_cnn, run_scheduled, torch_conv2d

HOST = resolve_target(None)
AVX2 = resolve_target({"kind": "llvm", "mcpu": "haswell"})

DEPTHWISE = [  # (N, C, H, W, kernel, stride, pad, dilation)
    (1, 32, 12, 12, 3, 1, 1, 1),  # MobileNet's stride-1 layer
    (2, 24, 9, 11, 3, 2, 1, 1),  # batch, stride 2, 24 channels: 1.5 vectors
    (1, 16, 10, 10, 5, 1, 4, 2),  # 5x5, dilated
    # padded maps larger than L2 (1 MiB on Zen 4, 256 KiB on Haswell): padded per task
    (2, 40, 90, 92, 3, 2, 1, 1),  # 2.5 vectors of AVX-512, odd output rows (45)
    (1, 32, 96, 96, 5, 1, 2, 1),  # 5x5, EfficientNet's
]
LARGE = DEPTHWISE[3]


def _case(shape):
    from tvmopt.passes.conv_geometry import ConvGeometry

    n, c, h, w, k, stride, pad, dil = shape
    out_h = (h + 2 * pad - dil * (k - 1) - 1) // stride + 1
    out_w = (w + 2 * pad - dil * (k - 1) - 1) // stride + 1
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    weight = rng.standard_normal((c, 1, k, k)).astype(np.float32)
    geometry = ConvGeometry((k, k), (stride, stride), (pad, pad), (dil, dil), (out_h, out_w))
    return x, weight, geometry


@pytest.mark.parametrize("target", [HOST, AVX2], ids=["host", "avx2"])
@pytest.mark.parametrize("channels_last", [True, False], ids=["nhwc", "nchw-input"])
@pytest.mark.parametrize("shape", DEPTHWISE)
def test_depthwise_nhwc_matches_torch(target, channels_last, shape):
    x, weight, geometry = _case(shape)
    channels = shape[1]
    bias = np.random.default_rng(1).standard_normal(channels).astype(np.float32)
    image = np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if channels_last else x
    arrays = [image, pack_depthwise(weight, vector_lanes(target)), bias]
    placeholders = [te.placeholder(a.shape, "float32") for a in arrays]
    y = depthwise_conv2d_nhwc(*placeholders, geometry=geometry, channels=channels,
                              channels_last=channels_last)  # fmt: skip
    out = run_scheduled(DepthwiseNHWC(), placeholders, y, arrays, target)
    expected = torch_conv2d(x, weight, geometry, bias, groups=channels)
    np.testing.assert_allclose(out.transpose(0, 3, 1, 2), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape, loops", [(DEPTHWISE[0], 2), (LARGE, 1)], ids=["small", "large"])
def test_maps_larger_than_l2_are_padded_by_each_task(shape, loops):
    """A padded map that fits in L2 is materialized by its own parallel loop, then read back;
    a larger one is padded a few rows at a time inside the taps' tasks (rule_depthwise_nhwc.py)."""
    from tvmopt._tvm import tvm  # noqa: F401 - te.create_prim_func needs TVM's runtime

    x, weight, geometry = _case(shape)
    arrays = [np.ascontiguousarray(x.transpose(0, 2, 3, 1)), pack_depthwise(weight, 16), None]
    placeholders = [te.placeholder(a.shape, "float32") for a in arrays[:2]]
    y = depthwise_conv2d_nhwc(*placeholders, None, geometry=geometry, channels=shape[1])
    func = te.create_prim_func([*placeholders, y]).with_attr("global_symbol", "main")
    script = DepthwiseNHWC().apply(func, HOST, False).mod["main"].script()
    assert script.count("T.parallel(") == loops  # the padding's own and the taps', or one


def test_mobilenet_shaped_cnn_runs_channels_last_and_matches_onnxruntime(tmp_path):
    """Every conv, depthwise ones included, is a channels-last kernel, and no transpose is left
    between the first conv and the global pool."""
    model = inverted_residual_cnn()
    compiled = tvmopt.compile(model, dump_ir=tmp_path)
    scheduled = sorted(tmp_path.glob("*ApplyDefaultSchedule*"))[-1].read_text()
    kernels = re.findall(r"def (\w+)\(", scheduled)
    assert [name for name in kernels if "depthwise" in name], kernels
    assert not [name for name in kernels if "conv2d" in name and "nhwc" not in name], kernels
    assert not [name for name in kernels if "transpose" in name], kernels
    assert_matches_ort(model, compiled)
