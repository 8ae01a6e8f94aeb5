"""Grouped convs channels last (backends/llvm/kernel_group_conv_nhwc.py, rule_group_conv_nhwc.py)
against torch's conv2d, and ShuffleNet units, whose channel shuffles fold into the next conv
(passes/channel_shuffle.py), against ONNX Runtime with no transpose or gather left."""

from __future__ import annotations

import re

import numpy as np
import pytest
from onnx import TensorProto, helper
from tvm import te

import tvmopt
from tvmopt.backends import resolve_target
from tvmopt.backends.llvm import kernel_group_conv_nhwc as group_nhwc
from tvmopt.backends.llvm.cpu import cpu_of
from tvmopt.backends.llvm.rule_group_conv_nhwc import GroupConv2dNHWC

from .helpers import assert_matches_ort, conv_case, make_model, run_scheduled, torch_conv2d

HOST = resolve_target(None)
AVX2 = resolve_target({"kind": "llvm", "mcpu": "haswell"})

CONVS = [  # (N, C, H, W, OC, kernel, stride, pad, dilation), groups
    ((1, 24, 9, 9, 112, 1, 1, 0, 1), 4),  # ShuffleNet's first: 6 inputs, 28 outputs per group
    ((1, 136, 7, 7, 136, 1, 1, 0, 1), 4),  # 34 outputs per group: 5 panels of 8, or 3 of 16
    ((2, 30, 6, 6, 60, 1, 1, 0, 1), 3),  # batch, 3 groups of 20 outputs
    ((1, 16, 11, 11, 64, 3, 2, 1, 1), 2),  # a 3x3 window, strided: not a GEMM over positions
    ((1, 64, 5, 5, 128, 1, 1, 0, 1), 8),  # 8 groups of 16 outputs: whole panels
]


def _ids(case) -> str:
    (n, c, h, w, oc, k, stride, *_), groups = case
    return f"{c}to{oc}-g{groups}-k{k}s{stride}"


@pytest.mark.parametrize("target", [HOST, AVX2], ids=["host", "avx2"])
@pytest.mark.parametrize("case", CONVS, ids=[_ids(case) for case in CONVS])
@pytest.mark.parametrize("shuffled", [False, True], ids=["plain", "shuffled"])
def test_group_conv_matches_torch(target, case, shuffled):
    """With `shuffled`, the kernel reads its input through a permutation of the channels."""
    shape, groups = case
    x, dense, geometry = conv_case(shape)
    weight = np.ascontiguousarray(dense[:, : shape[1] // groups])
    oc = shape[4]
    bias = np.random.default_rng(1).standard_normal(oc).astype(np.float32)
    packed = group_nhwc.pack_group_weight(weight, groups, cpu_of(target).lanes())
    source = np.random.default_rng(2).permutation(shape[1]).astype(np.int32)
    arrays = [np.ascontiguousarray(x.transpose(0, 2, 3, 1)), packed, bias]
    arrays += [source] if shuffled else []
    placeholders = [te.placeholder(a.shape, str(a.dtype)) for a in arrays]
    y = group_nhwc.group_conv2d_nhwc(*placeholders, geometry=geometry, groups=groups, channels=oc)
    out = run_scheduled(GroupConv2dNHWC(), placeholders, y, arrays, target)
    read = x[:, source] if shuffled else x
    expected = torch_conv2d(read, weight, geometry, bias, groups=groups)
    np.testing.assert_allclose(out.transpose(0, 3, 1, 2), expected, rtol=1e-4, atol=1e-4)


def test_panels_of_half_a_vector_where_whole_ones_would_be_mostly_padding():
    """AVX-512's 16 lanes for groups of 6 outputs: panels of 8; ResNeXt's groups of 4 neither."""
    assert group_nhwc.panel_lanes(4, (24, 6, 1, 1), lanes=16) == 8
    assert group_nhwc.panel_lanes(4, (136, 34, 1, 1), lanes=16) == 16
    assert group_nhwc.panel_lanes(32, (128, 4, 3, 3), lanes=16) is None


def test_groups_of_few_outputs_do_not_pay():
    """ResNeXt-50's groups of 4 outputs would be half padding in AVX2's panels of 8."""
    assert not group_nhwc.pays(32, (128, 4, 3, 3), lanes=8)
    assert group_nhwc.pays(4, (136, 34, 1, 1), lanes=8)


def _shuffle(x, out, groups, channels, size):
    """ShuffleNet's channel shuffle as ONNX exports it: Reshape, Transpose, Reshape."""
    split = [1, groups, channels // groups, size, size]
    return [
        helper.make_node("Reshape", [x, f"{out}_split"], [f"{out}_5d"]),
        helper.make_node("Transpose", [f"{out}_5d"], [f"{out}_swapped"], perm=[0, 2, 1, 3, 4]),
        helper.make_node("Reshape", [f"{out}_swapped", f"{out}_merged"], [out]),
    ], {f"{out}_split": np.array(split), f"{out}_merged": np.array([1, channels, size, size])}


def shufflenet_unit(groups: int, stride: int, size: int = 14):
    """Two ShuffleNet v1 units: a stem conv, then a unit of `stride` (2: the shortcut is an
    average pool, concatenated), then one of stride 1 (a residual add); a global pool ends it.
    Each group's bottleneck has 6 channels."""
    channels = 24 * groups
    rng = np.random.default_rng(groups * 10 + stride)
    node, weights, nodes = helper.make_node, {}, []

    def conv(x, out, cin, cout, k=1, group=1, s=1, relu=True):
        weights[f"{out}_w"] = (rng.standard_normal((cout, cin // group, k, k)) / 3).astype("f4")
        weights[f"{out}_b"] = rng.standard_normal(cout).astype(np.float32)
        attrs = {"group": group, "kernel_shape": [k, k], "strides": [s, s], "pads": [k // 2] * 4}
        conv_out = f"{out}_c" if relu else out
        nodes.append(node("Conv", [x, f"{out}_w", f"{out}_b"], [conv_out], **attrs))
        if relu:
            nodes.append(node("Relu", [f"{out}_c"], [out]))

    def unit(x, out, cin, cout, s, size):  # size: of its input
        mid = cout // 4 // groups * groups
        branch = cout - cin if s == 2 else cout
        conv(x, f"{out}_g1", cin, mid, group=groups)
        shuffle, shapes = _shuffle(f"{out}_g1", f"{out}_sh", groups, mid, size)
        nodes.extend(shuffle)
        weights.update(shapes)
        conv(f"{out}_sh", f"{out}_dw", mid, mid, k=3, group=mid, s=s, relu=False)
        conv(f"{out}_dw", f"{out}_g2", mid, branch, group=groups, relu=False)
        if s == 2:
            nodes.append(node("AveragePool", [x], [f"{out}_pool"], kernel_shape=[3, 3],
                              strides=[2, 2], pads=[1, 1, 1, 1]))  # fmt: skip
            nodes.append(node("Concat", [f"{out}_g2", f"{out}_pool"], [f"{out}_sum"], axis=1))
        else:
            nodes.append(node("Add", [f"{out}_g2", x], [f"{out}_sum"]))
        nodes.append(node("Relu", [f"{out}_sum"], [out]))

    stem = 24 if stride == 2 else channels
    conv("x", "stem", 3, stem, k=3)
    unit("stem", "u1", stem, channels, stride, size)
    unit("u1", "u2", channels, channels, 1, size // stride)
    nodes.append(node("GlobalAveragePool", ["u2"], ["y"]))
    return make_model(nodes, [("x", TensorProto.FLOAT, [1, 3, size, size])],
                      [("y", TensorProto.FLOAT, [1, channels, 1, 1])], weights)  # fmt: skip


def _kernels(tmp_path) -> tuple[list[str], str]:
    scheduled = sorted(tmp_path.glob("*ApplyDefaultSchedule*"))[-1].read_text()
    return re.findall(r"def (\w+)\(", scheduled), scheduled


@pytest.mark.parametrize("target", [None, "x86-64-v3"])
@pytest.mark.parametrize("groups", [2, 3, 4, 8])
@pytest.mark.parametrize("stride", [1, 2])
def test_shufflenet_units_run_channels_last_with_shuffles_folded(tmp_path, groups, stride, target):
    """Every grouped conv takes the grouped NHWC kernel, every shuffle is read by the next conv
    (no transpose or gather kernel left), and the numbers match ONNX Runtime's; for the host
    and for AVX2 (which every host here runs). The 6-channel groups fill AVX2's panels of 8;
    on an AVX-512 host they take panels of 8 too, half its vector (panel_lanes)."""
    model = shufflenet_unit(groups, stride)
    compiled = tvmopt.compile(model, target=target, dump_ir=tmp_path)
    kernels, scheduled = _kernels(tmp_path)
    rules = re.findall(r'"tvmopt.rule": "(\w+)"', scheduled)
    assert "GroupConv2dNHWC" in rules, rules  # identical units share their kernels
    assert "Conv2dNCHW" not in rules and "DepthwiseConv2dNCHW" not in rules, rules
    assert not [k for k in kernels if re.search("transpose|take", k)], kernels
    # one reshape: the pooled [1, 1, 1, C] to the output's [1, C, 1, 1]
    assert len([k for k in kernels if "reshape" in k]) <= 1, kernels
    assert_matches_ort(model, compiled)


def shufflenet_v2_unit(channels: int = 32, size: int = 8):
    """ShuffleNetV2's unit: a channel split, one half through 1x1 -> depthwise 3x3 -> 1x1, the
    halves concatenated and shuffled in 2 groups; a global pool ends it."""
    rng = np.random.default_rng(7)
    node, half = helper.make_node, channels // 2
    shapes = {"w1": (half, half, 1, 1), "dw": (half, 1, 3, 3), "w2": (half, half, 1, 1)}
    weights = {k: rng.standard_normal(shape).astype(np.float32) for k, shape in shapes.items()}
    weights["split"] = np.array([half, half])
    shuffle, shuffle_shapes = _shuffle("cat", "shuffled", 2, channels, size)
    weights.update(shuffle_shapes)
    nodes = [
        node("Split", ["x", "split"], ["left", "right"], axis=1),
        node("Conv", ["right", "w1"], ["c1"]),
        node("Relu", ["c1"], ["r1"]),
        node("Conv", ["r1", "dw"], ["c2"], group=half, pads=[1, 1, 1, 1]),
        node("Conv", ["c2", "w2"], ["c3"]),
        node("Relu", ["c3"], ["r3"]),
        node("Concat", ["left", "r3"], ["cat"], axis=1),
        *shuffle,
        node("GlobalAveragePool", ["shuffled"], ["y"]),
    ]
    return make_model(nodes, [("x", TensorProto.FLOAT, [1, channels, size, size])],
                      [("y", TensorProto.FLOAT, [1, channels, 1, 1])], weights)  # fmt: skip


def test_shufflenet_v2_unit_matches_onnxruntime():
    """Its shuffle is read by no conv (a split and a concat around it): one gather stays."""
    model = shufflenet_v2_unit()
    assert_matches_ort(model, tvmopt.compile(model))
