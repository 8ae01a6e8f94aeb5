"""Float convs channels last: the NHWC kernel (backends/llvm/kernel_conv_nhwc.py) and its schedule
rule against torch's conv2d, and the graph pass (backends/llvm/conv_channels_last.py) on whole
models against ONNX Runtime, with no transposes left between convs."""

from __future__ import annotations

import re

import numpy as np
import pytest
from onnx import TensorProto, helper
from tvm import te

import tvmopt
from tvmopt.backends import resolve_target
from tvmopt.backends.llvm import kernel_conv_nhwc as conv_nhwc
from tvmopt.backends.llvm.cpu import cpu_of
from tvmopt.backends.llvm.rule_conv_nhwc import Conv2dNHWC

from .helpers import (
    assert_matches_ort,
    conv_case,
    make_model,
    residual_cnn,
    run_scheduled,
    torch_conv2d,
)

HOST = resolve_target(None)
AVX2 = resolve_target({"kind": "llvm", "mcpu": "haswell"})

CONVS = [  # (N, C, H, W, OC, kernel, stride, pad, dilation)
    (1, 3, 17, 15, 10, 3, 2, 1, 1),  # 3 input channels (a stem), 10 outputs: one partial panel
    (2, 16, 9, 9, 40, 3, 1, 2, 2),  # batch, dilation, 40 outputs: 2.5 panels
    (1, 32, 7, 7, 48, 1, 1, 0, 1),  # 1x1: one GEMM over the 49 positions
    (1, 8, 9, 9, 16, 1, 2, 0, 1),  # 1x1 strided: a window, not a GEMM over positions
    (1, 128, 4, 4, 288, 3, 1, 1, 1),  # a weight over L2 (1 MiB or less): panels outermost
]


@pytest.mark.parametrize("target", [HOST, AVX2], ids=["host", "avx2"])
@pytest.mark.parametrize("shape", CONVS)
def test_nhwc_conv_matches_torch(target, shape):
    x, weight, geometry = conv_case(shape)
    (n, out_h, out_w, oc) = (shape[0], *geometry.out_hw, shape[4])
    bias = np.random.default_rng(1).standard_normal(oc).astype(np.float32)
    packed = conv_nhwc.pack_weight(weight, cpu_of(target).lanes())
    arrays = [np.ascontiguousarray(x.transpose(0, 2, 3, 1)), packed, bias]
    placeholders = [te.placeholder(a.shape, "float32") for a in arrays]
    y = conv_nhwc.conv2d_nhwc(*placeholders, geometry=geometry, channels=oc)
    out = run_scheduled(Conv2dNHWC(), placeholders, y, arrays, target)
    assert out.shape == (n, out_h, out_w, oc)
    expected = torch_conv2d(x, weight, geometry, bias)
    np.testing.assert_allclose(out.transpose(0, 3, 1, 2), expected, rtol=1e-4, atol=1e-4)


def test_large_weight_case_takes_the_panels_outer_branch():
    n, c, h, w, oc, k = CONVS[-1][:6]
    packed = conv_nhwc.pack_weight(np.zeros((oc, c, k, k), np.float32), cpu_of(HOST).lanes())
    assert packed.nbytes > max(cpu_of(target).l2_bytes for target in (HOST, AVX2))


def _kernel_names(scheduled_ir: str) -> list[str]:
    return re.findall(r"def (\w+)\(", scheduled_ir)


def test_resnet_shaped_cnn_runs_channels_last_and_matches_onnxruntime(tmp_path):
    """Every conv is an NHWC kernel with its bias, residual and relu fused, and no transpose is
    left: the first conv reads the NCHW image as it pads it."""
    model = residual_cnn()
    compiled = tvmopt.compile(model, dump_ir=tmp_path)
    kernels = _kernel_names(sorted(tmp_path.glob("*ApplyDefaultSchedule*"))[-1].read_text())
    convs = [name for name in kernels if "conv2d" in name]
    assert len(convs) == 4 and all("conv2d_nhwc" in name for name in convs), kernels
    assert not [name for name in kernels if "transpose" in name], kernels
    assert any(re.fullmatch(r"fused_conv2d_nhwc\d*_add\d*_relu\d*", name) for name in kernels)
    assert_matches_ort(model, compiled)


def _grouped_cnn():
    rng = np.random.default_rng(0)
    node = helper.make_node
    nodes = [
        node("Conv", ["x", "w0"], ["c0"], pads=[1, 1, 1, 1]),
        node("Relu", ["c0"], ["r0"]),
        node("Conv", ["r0", "w1"], ["c1"], pads=[1, 1, 1, 1], group=4),
        node("Conv", ["c1", "w2"], ["y"]),
    ]
    weights = {"w0": rng.standard_normal((16, 3, 3, 3)), "w1": rng.standard_normal((16, 4, 3, 3)),
               "w2": rng.standard_normal((8, 16, 1, 1))}  # fmt: skip
    weights = {name: value.astype(np.float32) for name, value in weights.items()}
    return make_model(nodes, [("x", TensorProto.FLOAT, [1, 3, 12, 12])],
                      [("y", TensorProto.FLOAT, [1, 8, 12, 12])], weights)  # fmt: skip


def test_model_with_grouped_non_depthwise_convs_stays_nchw(tmp_path):
    """A grouped conv that is not depthwise (ResNeXt's) has NCHW rules, and transposing around it
    would cost more than it saves. (Depthwise convs go channels last: test_depthwise_nhwc.py.)"""
    model = _grouped_cnn()
    compiled = tvmopt.compile(model, dump_ir=tmp_path)
    kernels = _kernel_names(sorted(tmp_path.glob("*ApplyDefaultSchedule*"))[-1].read_text())
    assert not [name for name in kernels if "nhwc" in name], kernels
    assert_matches_ort(model, compiled)
