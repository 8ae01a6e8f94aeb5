"""The depth-8 vpmaddubsw step (cpu.py's vpmaddubsw8-256/512): taken only where every int16 lane
stays exact (int8_quads_fit), at the bound and one past it on the worst input; calibrated
weights refitted to it (int8_quads.py); the kernels against integer arithmetic in numpy."""

from __future__ import annotations

import numpy as np
import pytest
from tvm import te

from tvmopt._tvm import tvm
from tvmopt.backends import resolve_target
from tvmopt.backends.cpu_features import host_features
from tvmopt.backends.llvm import kernel_int8_gemm as kernels
from tvmopt.backends.llvm.backend import cpu_int8_kernels
from tvmopt.backends.llvm.cpu import INT8_STEPS, QUAD_LIMIT, cpu_of, int8_quads_fit
from tvmopt.backends.llvm.int8_quads import fit_quads, worst_quads
from tvmopt.backends.llvm.rule_int8_gemm import Int8Gemm
from tvmopt.passes.conv_geometry import ConvGeometry
from tvmopt.passes.quantize.convert import quantize_weight

AVX2 = resolve_target({"kind": "llvm", "mcpu": "x86-64-v3"})
NO_AVX512 = pytest.mark.skipif("avx512bw" not in (host_features() or ()),
                               reason="this CPU cannot run AVX-512 code")  # fmt: skip
AVX512 = pytest.param(resolve_target({"kind": "llvm", "mcpu": "skylake-avx512"}),
                      marks=NO_AVX512, id="avx512")  # fmt: skip
TARGETS = [pytest.param(AVX2, id="avx2"), AVX512]
DEPTH_8 = {"avx2": INT8_STEPS["vpmaddubsw8-256"], "avx512": INT8_STEPS["vpmaddubsw8-512"]}


def _pack(target):
    return cpu_int8_kernels(cpu_of(target)).pack_conv2d


def _pointwise(target, x, packed, channels):
    """The int8 1x1 conv of uint8 NHWC `x` on its packed weight, scale 1, no correction: the
    int32 sums as floats; and the LLVM intrinsics its schedule used."""
    correction, scale = np.zeros(channels, np.int32), np.ones(channels, np.float32)
    arrays = [x, packed, correction, scale]
    placeholders = [te.placeholder(a.shape, str(a.dtype)) for a in arrays]
    y = kernels.int8_conv2d(*placeholders, geometry=ConvGeometry(out_hw=x.shape[1:3]),
                            channels=channels, inv_scale=1.0, zero_point=0)  # fmt: skip
    scheduled = Int8Gemm().apply(te.create_prim_func([*placeholders, y]), target, False)
    lib = tvm.compile(scheduled.mod, target=target)
    out = tvm.runtime.tensor(np.zeros((*x.shape[:3], channels), np.float32))
    lib(*(tvm.runtime.tensor(a) for a in arrays), out)
    return out.numpy(), scheduled.mod.script()


# one block of 8 input channels; its quads are channels {0, 1, 4, 5} and {2, 3, 6, 7}
QUAD_CASES = [
    ([32, 32, 32, 32, 32, 32, 32, 32], True),  # a quad of 128: 255 x 128 = 32640
    ([33, 32, 32, 32, 32, 32, 32, 32], False),  # 129: 32895 > 32767
    ([-32, -32, -32, -32, -32, -32, -32, -32], True),  # -32640 >= -32768
    ([-33, -32, -32, -32, -32, -32, -32, -32], False),
    ([63, -63, 0, 0, 65, -65, 0, 0], True),  # signs apart: 128 each way
    ([63, -63, 0, 0, 66, -63, 0, 0], False),  # 129 positive
    ([100, -100, 0, 0, 0, 0, 0, 0], True),  # the depth-4 step's pairs do not (|w0| + |w1|)
]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("block, fits", QUAD_CASES)
def test_depth_8_step_is_taken_only_where_its_int16_lanes_are_exact(target, block, fits):
    """The worst input for each quad: 255 where its weight is positive (or negative: a second
    output channel with the weight negated), 0 elsewhere. At the bound the sums are exact on
    the depth-8 step; one past it the weight is packed for a depth-4 step (vpmaddubsw's where
    its pairs fit, else vpmaddwd's), still exact."""
    weight = np.tile(np.array(block, np.int8), 16)  # 128 input channels
    wq = np.stack([weight, -weight] * 8)[:, :, None, None]  # 16 outputs
    assert int8_quads_fit(wq) == fits
    packed = _pack(target)(wq)
    assert (packed.ndim == 7) == fits  # [O/L, 1, 1, C/8, 2, L, 4] for the depth-8 step
    step = DEPTH_8[target.attrs["mcpu"] == "skylake-avx512" and "avx512" or "avx2"]
    x = np.stack([np.where(weight > 0, 255, 0), np.where(weight < 0, 255, 0)]).astype(np.uint8)
    x = np.repeat(x, 2, axis=0).reshape(1, 2, 2, 128)  # 4 positions, both worst cases
    actual, script = _pointwise(target, x, packed, 16)
    assert not fits or step.llvm_intrinsic in script
    exact = x.reshape(4, 128).astype(np.int64) @ wq[:, :, 0, 0].T.astype(np.int64)
    np.testing.assert_array_equal(actual.reshape(4, 16), exact)


def test_depth_8_needs_no_more_padding_than_depth_4():
    """12 channels pad to 12 in fours but to 16 in eights: the depth-4 step takes them."""
    wq = np.ones((16, 12, 1, 1), np.int8)
    assert int8_quads_fit(wq) and _pack(AVX2)(wq).ndim == 6
    assert _pack(AVX2)(np.ones((16, 16, 1, 1), np.int8)).ndim == 7


def test_fit_quads_refits_only_the_channels_over_the_bound():
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((32, 64, 3, 3)).astype(np.float32)
    weight[:8] *= 0.01  # a few outliers keep these channels' quads small at 7 bits
    weight[:8, 0, 0, 0] = 0.2
    quantized, scale = quantize_weight(weight, 63)
    fitted, fitted_scale = fit_quads(weight, quantized, scale)
    assert not int8_quads_fit(quantized) and int8_quads_fit(fitted)
    kept = worst_quads(quantized) <= QUAD_LIMIT
    assert kept[:8].all() and not kept.all()
    np.testing.assert_array_equal(fitted[kept], quantized[kept])
    assert (fitted_scale[~kept] > scale[~kept]).all()
    # the refit is a plain rounding at the coarser scale: within half a step of the weight
    error = np.abs(fitted * fitted_scale[:, None, None, None] - weight)
    assert (error <= fitted_scale[:, None, None, None] / 2 + 1e-7).all()


def test_fit_quads_leaves_8_bit_weights_alone():
    weight = np.random.default_rng(1).standard_normal((16, 32, 1, 1)).astype(np.float32)
    quantized, scale = quantize_weight(weight, 127)
    fitted, fitted_scale = fit_quads(weight, quantized, scale)
    assert fitted is quantized and fitted_scale is scale
