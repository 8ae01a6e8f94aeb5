"""Float 3x3 convs by Winograd's F(m x m, 3 x 3): the kernel (backends/llvm/kernel_winograd.py) and
its schedule rule against torch's conv2d, and whole models against ONNX Runtime, where it applies
and where it must not."""

from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
from tvm import te

import tvmopt
from tvmopt.backends import resolve_target
from tvmopt.backends.llvm import kernel_winograd as conv_winograd
from tvmopt.backends.llvm.rule_winograd import Conv2dWinograd
from tvmopt.backends.llvm.schedule_util import vector_lanes
from tvmopt.cli import main
from tvmopt.passes.conv_geometry import ConvGeometry

from .helpers import assert_matches_ort, conv_case, residual_cnn, run_scheduled, torch_conv2d

HOST = resolve_target(None)
AVX2 = resolve_target({"kind": "llvm", "mcpu": "haswell"})

CONVS = [  # (N, C, H, W, OC, kernel, stride, pad, dilation)
    (1, 16, 14, 14, 16, 3, 1, 1, 1),  # 14 rows: the last tile of 4 is cut short
    (2, 20, 9, 11, 40, 3, 1, 1, 1),  # batch, not square, 40 outputs: 2.5 panels
    (1, 8, 8, 8, 24, 3, 1, 0, 1),  # unpadded: 6 x 6 outputs
    (1, 8, 6, 6, 16, 3, 1, 2, 1),  # padded by 2: 8 x 8 outputs
    (1, 8, 10, 10, 16, 3, 1, 0, 1),  # unpadded, whole tiles: the input is read in place
]


def _run(shape, tile, target, with_bias=True) -> tuple[np.ndarray, np.ndarray]:
    x, weight, geometry = conv_case(shape)
    oc = shape[4]
    bias = np.random.default_rng(1).standard_normal(oc).astype(np.float32) if with_bias else None
    arrays = [np.ascontiguousarray(x.transpose(0, 2, 3, 1)),
              conv_winograd.transform_weight(weight, tile, vector_lanes(target))]  # fmt: skip
    arrays += [bias] if with_bias else []
    placeholders = [te.placeholder(a.shape, "float32") for a in arrays]
    y = conv_winograd.conv2d_winograd(*placeholders[:2], placeholders[2] if with_bias else None,
                                      geometry=geometry, channels=oc, tile=tile)  # fmt: skip
    out = run_scheduled(Conv2dWinograd(), placeholders, y, arrays, target)
    return out.transpose(0, 3, 1, 2), torch_conv2d(x, weight, geometry, bias)


@pytest.mark.parametrize("target", [HOST, AVX2], ids=["host", "avx2"])
@pytest.mark.parametrize("shape", CONVS)
def test_winograd_conv_matches_torch(target, shape):
    actual, expected = _run(shape, conv_winograd.DEFAULT_TILE, target)
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


@pytest.mark.parametrize("tile", [2, 3, 6])
def test_other_tile_sizes_and_no_bias_match_torch(tile):
    actual, expected = _run(CONVS[1], tile, HOST, with_bias=False)
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


@pytest.mark.parametrize(
    "geometry",
    [
        ConvGeometry((3, 3), (2, 2), (1, 1), (1, 1), (28, 28)),  # strided
        ConvGeometry((3, 3), (1, 1), (2, 2), (2, 2), (28, 28)),  # dilated
        ConvGeometry((5, 5), (1, 1), (2, 2), (1, 1), (28, 28)),  # 5x5
        ConvGeometry((3, 3), (1, 1), (1, 1), (1, 1), (7, 7)),  # a map too small to pay
    ],
)
def test_winograd_declines_what_it_cannot_do_or_does_not_pay(geometry):
    assert not conv_winograd.pays(geometry)


def test_winograd_pays_on_resnet_3x3_convs():
    assert conv_winograd.pays(ConvGeometry((3, 3), (1, 1), (1, 1), (1, 1), (14, 14)))


def _kernel_names(tmp_path) -> list[str]:
    scheduled = sorted(tmp_path.glob("*ApplyDefaultSchedule*"))[-1].read_text()
    return re.findall(r"def (\w+)\(", scheduled)


def test_residual_block_on_16x16_maps_runs_winograd_and_matches_onnxruntime(tmp_path):
    """Both 3x3 convs of the block take Winograd's kernel, the second with its residual add and
    relu fused; the strided stem and the pointwise conv stay direct. (On 8 x 8 maps the block
    stays direct: test_conv_channels_last.py's model.)"""
    model = residual_cnn(size=64)
    compiled = tvmopt.compile(model, dump_ir=tmp_path)
    kernels = _kernel_names(tmp_path)
    assert len([name for name in kernels if "winograd" in name]) == 2, kernels
    assert any(re.fullmatch(r"fused_conv2d_winograd\d*_add\d*_relu\d*", name) for name in kernels)
    assert len([name for name in kernels if "conv2d_nhwc" in name]) == 2, kernels
    assert_matches_ort(model, compiled)


def test_no_winograd_keeps_every_conv_direct(tmp_path):
    model = residual_cnn(size=64)
    compiled = tvmopt.compile(model, dump_ir=tmp_path, winograd=False)
    kernels = _kernel_names(tmp_path)
    assert not [name for name in kernels if "winograd" in name], kernels
    assert len([name for name in kernels if "conv2d_nhwc" in name]) == 4, kernels
    assert_matches_ort(model, compiled)


def test_cli_no_winograd_builds_the_smaller_library(tmp_path):
    path = tmp_path / "model.onnx"
    onnx.save(residual_cnn(size=64), path)
    sizes = {}
    for flags in ([], ["--no-winograd"]):
        out = tmp_path / f"model{len(flags)}.so"
        assert main(["compile", str(path), "-o", str(out), *flags]) == 0
        sizes[len(flags)] = out.stat().st_size
    # two 16 -> 16 3x3 weights, 9 KiB each, become 36 KiB each
    assert sizes[0] - sizes[1] > 40_000
