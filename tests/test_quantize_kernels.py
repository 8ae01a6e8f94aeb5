"""The int8 layer kernel and its schedule rule, against integer arithmetic done in numpy; the
observers' qparams on known distributions."""

from __future__ import annotations

import numpy as np
import pytest
from tvm import s_tir, te

from tvmopt._tvm import tvm
from tvmopt.backends import resolve_target
from tvmopt.backends.cpu_features import host_features
from tvmopt.backends.llvm import kernel_int8_gemm as kernels
from tvmopt.backends.llvm.backend import cpu_int8_kernels
from tvmopt.backends.llvm.cpu import INT8_STEPS, cpu_of, int8_pairs_fit
from tvmopt.backends.llvm.rule_int8_gemm import Int8Gemm
from tvmopt.passes.conv_geometry import ConvGeometry
from tvmopt.passes.quantize.convert import kernel_constants, quantize_weight
from tvmopt.passes.quantize.observers import (
    EntropyObserver,
    MinMaxObserver,
    MseObserver,
    PercentileObserver,
    QParams,
    qparams_for,
)
from tvmopt.passes.quantize.spec import Entropy, MinMax, Mse, Percentile

from .helpers import conv_case, torch_conv2d

HOST = resolve_target(None)
AVX2 = resolve_target({"kind": "llvm", "mcpu": "haswell"})  # no AVX-512, no VNNI: the fallback


def _build(prim_func, target, packed, signed=False):
    """The kernel scheduled for `target`, on the int8 step its packed weight's blocks are for
    (vpdpbusd on AVX-512 VNNI; vpmaddubsw or vpmaddwd on AVX2) where it has one; CUDA's signed
    kernel on the vectorized loops."""
    scheduled = Int8Gemm().apply(prim_func, target, False)
    assert scheduled is not None, "the int8 rule did not fire"
    text = scheduled.mod.script()
    step = None if signed else _step_of(packed, target)
    used = {step.llvm_intrinsic, step.pair_sum} if step else set()
    for other in INT8_STEPS.values():
        assert (other.llvm_intrinsic in text) == (other.llvm_intrinsic in used), other.name
    return tvm.compile(scheduled.mod, target=target)


def _step_of(packed, target):
    """The step of `target` whose blocks the packed weight has."""
    block = (*kernels.packed_block(packed), str(packed.dtype))
    steps = cpu_of(target).int8_steps
    return next((s for s in steps if (s.lanes, s.depth, s.parts, s.weight) == block), None)


def _run(lib, arrays, out_shape):
    tensors = [tvm.runtime.tensor(a) for a in arrays]
    out = tvm.runtime.tensor(np.zeros(out_shape, np.float32))
    lib(*tensors, out)
    return out.numpy()


def _fake_quantized(x, qparams: QParams):
    q = np.clip(np.round(x / qparams.scale) + qparams.zero_point, 0, 255)
    return (q - qparams.zero_point).astype(np.float64)


CONVS = [  # (N, C, H, W, OC, kernel, stride, pad, dilation)
    (1, 3, 17, 15, 10, 3, 2, 1, 1),  # channels and outputs not multiples of 4 and 16
    (2, 16, 9, 9, 32, 3, 1, 2, 2),  # batch, dilation
    (1, 32, 7, 7, 48, 1, 1, 0, 1),  # 1x1: one GEMM over the 49 positions
    (2, 6, 5, 3, 16, 1, 1, 0, 1),  # 1x1, batch, channels padded to 8
    (1, 8, 9, 9, 16, 1, 2, 0, 1),  # 1x1 strided: a window, not a GEMM over positions
    (1, 128, 4, 4, 1024, 3, 1, 1, 1),  # a weight over L2 (1.2 MB): panels outermost
]


def _pack(target):
    """The int8 weight packing for `target`: for the first of its int8 steps that is exact on
    the weight (cpu.py): 16 x 4 int8 blocks on AVX-512 VNNI; on AVX2, 8 x 4 int8 for
    vpmaddubsw where the weight's pairs fit in int16 (7-bit weights), else 8 x 2 int16."""
    return cpu_int8_kernels(cpu_of(target)).pack_conv2d


# (target, signed, weight levels): AVX2's 8-bit weights take vpmaddwd, its 7-bit ones vpmaddubsw
# AVX-512 without VNNI (Skylake-SP) runs on an AVX-512 host: vpmaddubsw on zmm
NO_AVX512 = pytest.mark.skipif("avx512bw" not in (host_features() or ()),
                               reason="this CPU cannot run AVX-512 code")  # fmt: skip
AVX512 = pytest.param(resolve_target({"kind": "llvm", "mcpu": "x86-64-v4"}), False, 63,
                      marks=NO_AVX512)  # fmt: skip
KERNEL_CASES = [(HOST, False, 127), (AVX2, False, 127), (AVX2, False, 63), AVX512,
                (HOST, True, 127)]  # fmt: skip
KERNEL_IDS = ["host", "avx2", "avx2-7bit", "avx512-7bit", "signed"]  # signed: CUDA's, run here


@pytest.mark.parametrize("target, signed, levels", KERNEL_CASES, ids=KERNEL_IDS)
@pytest.mark.parametrize("shape", CONVS)
def test_int8_conv2d_is_exact_integer_arithmetic(target, signed, levels, shape):
    x, weight, geometry = conv_case(shape)
    (n, out_h, out_w, oc) = (shape[0], *geometry.out_hw, shape[4])
    qparams = qparams_for(float(x.min()), float(x.max()), symmetric=False)
    consts = kernel_constants(weight, qparams, None, _pack(target), signed, levels)
    packed, correction, scale = (v.value.numpy() for v in consts)
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))  # the kernel is channels last
    arrays = [x_nhwc, packed, correction, scale]
    placeholders = [te.placeholder(a.shape, str(a.dtype)) for a in arrays]
    y = kernels.int8_conv2d(*placeholders, geometry=geometry, channels=oc, signed=signed,
                            inv_scale=1 / qparams.scale, zero_point=qparams.zero_point)  # fmt: skip
    lib = _build(te.create_prim_func([*placeholders, y]), target, packed, signed)
    actual = _run(lib, arrays, (n, out_h, out_w, oc)).transpose(0, 3, 1, 2)
    wq, w_scale = quantize_weight(weight, levels)
    expected = torch_conv2d(_fake_quantized(x, qparams), wq, geometry)
    expected *= (qparams.scale * w_scale)[None, :, None, None]
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("signed", [False, True], ids=["uint8", "signed"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("target, levels", [(HOST, 63), (AVX2, 63), (AVX2, 127)],
                         ids=["host", "avx2-7bit", "avx2"])  # fmt: skip
def test_uint8_input_is_read_in_place(target, levels, stride, signed):
    """A pointwise conv of a requantized (uint8 NHWC) tensor has no quantize step: the GEMM
    reads the input as it is, and the result is the same integer arithmetic. A signed kernel
    (CUDA's) shifts it to int8 first, and AVX2's int16 step (8-bit weights) widens it, with the
    same result."""
    rng = np.random.default_rng(4)
    x = rng.integers(0, 256, (1, 7, 7, 32)).astype(np.uint8)
    x[0, 0, 0, :4] = [0, 127, 128, 255]  # the ends and the middle of the shift
    weight = rng.standard_normal((48, 32, 1, 1)).astype(np.float32)
    qparams = QParams(0.05, 17)
    consts = kernel_constants(weight, qparams, None, _pack(target), signed, levels)
    packed, correction, scale = (v.value.numpy() for v in consts)
    out_hw = (-(-7 // stride),) * 2
    geometry = ConvGeometry(strides=(stride, stride), out_hw=out_hw)
    placeholders = [te.placeholder(a.shape, str(a.dtype)) for a in (x, packed, correction, scale)]
    y = kernels.int8_conv2d(*placeholders, geometry=geometry, channels=48, signed=signed,
                            inv_scale=1 / qparams.scale, zero_point=qparams.zero_point)  # fmt: skip
    func = te.create_prim_func([*placeholders, y])
    assert (kernels.QUANTIZE in func.script()) == (signed or packed.dtype == np.int16)
    lib = _build(func, target, packed, signed)
    actual = _run(lib, [x, packed, correction, scale], (1, *out_hw, 48))
    wq, w_scale = quantize_weight(weight, levels)
    centred = x[:, ::stride, ::stride].astype(np.float64) - qparams.zero_point
    expected = centred @ wq[:, :, 0, 0].T.astype(np.float64) * (qparams.scale * w_scale)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_large_weight_case_takes_the_panels_outer_branch():
    *_, oc, k = CONVS[-1][:6]
    l2 = max(cpu_of(target).l2_bytes for target in (HOST, AVX2))
    assert oc * k * k * CONVS[-1][1] > l2  # int8: one byte per weight


@pytest.mark.parametrize("target, signed, levels", KERNEL_CASES, ids=KERNEL_IDS)
def test_int8_matmul_is_exact_integer_arithmetic(target, signed, levels):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((24, 37)).astype(np.float32)  # K = 37: padded to 40
    weight = rng.standard_normal((37, 20)).astype(np.float32)  # N = 20: padded to 32
    bias = rng.standard_normal(20)  # folded into the int32 correction at act x weight scale
    qparams = qparams_for(float(x.min()), float(x.max()), symmetric=True)
    weight_oihw = weight.T[:, :, None, None]
    consts = kernel_constants(weight_oihw, qparams, bias, _pack(target), signed, levels)
    packed, correction, scale = (v.value.numpy() for v in consts)
    placeholders = [te.placeholder(a.shape, str(a.dtype)) for a in (x, packed, correction, scale)]
    y = kernels.int8_matmul(*placeholders, columns=20, inv_scale=1 / qparams.scale,
                            zero_point=qparams.zero_point, signed=signed)  # fmt: skip
    lib = _build(te.create_prim_func([*placeholders, y]), target, packed, signed)
    actual = _run(lib, [x, packed, correction, scale], (24, 20))
    wq, w_scale = quantize_weight(weight_oihw, levels)
    expected = _fake_quantized(x, qparams) @ wq[:, :, 0, 0].T.astype(np.float64)
    expected *= qparams.scale * w_scale[None, :]
    step = qparams.scale * w_scale  # the bias is rounded to the accumulator's grid
    np.testing.assert_allclose(actual, expected + bias, rtol=1e-5, atol=step.max())


@pytest.mark.parametrize("target, levels", [(HOST, 127), (AVX2, 127), (AVX2, 63)],
                         ids=["host", "avx2", "avx2-7bit"])  # fmt: skip
def test_worst_case_int8_values_are_exact(target, levels):
    """255 x 127 products everywhere: vpmaddubsw, the u8 x s8 instruction ONNX Runtime's AVX2
    kernels use, adds them in pairs into int16, and 255 x 127 x 2 = 64770 saturates at 32767.
    Our AVX2 kernels take vpmaddubsw only for weights whose pairs fit (7-bit: 255 x 63 x 2 =
    32130) and widen 8-bit ones to int16 (vpmaddwd): every sum here is exact, as on VNNI."""
    signs = np.where(np.arange(256) % 3 == 0, -1.0, 1.0)
    weight = (np.ones((32, 256, 1, 1)) * signs[None, :, None, None]).astype(np.float32)
    qparams = QParams(0.5, 0)
    packed, correction, scale = (v.value.numpy() for v in kernel_constants(
        weight, qparams, None, _pack(target), levels=levels))  # fmt: skip
    wq, w_scale = quantize_weight(weight, levels)
    exact = 255 * wq[:, :, 0, 0].astype(np.int64).sum(axis=1)  # -85 x 255 x 127 + ... per channel
    actual = _pointwise_of_255(target, packed, correction, scale)
    expected = np.broadcast_to(exact * (0.5 * w_scale), actual.shape)
    np.testing.assert_allclose(actual, expected, rtol=1e-6)  # saturated: off by half or more


def _pointwise_of_255(target, packed, correction, scale, inv_scale=2.0):
    """A 1x1 conv over a 4x4 map of 255s, 256 channels in, 32 out: a requantized input, read
    as it is."""
    x = np.full((1, 4, 4, 256), 255, np.uint8)
    placeholders = [te.placeholder(a.shape, str(a.dtype)) for a in (x, packed, correction, scale)]
    y = kernels.int8_conv2d(*placeholders, geometry=ConvGeometry(out_hw=(4, 4)), channels=32,
                            inv_scale=inv_scale, zero_point=0)  # fmt: skip
    lib = _build(te.create_prim_func([*placeholders, y]), target, packed)
    return _run(lib, [x, packed, correction, scale], (1, 4, 4, 32))


@pytest.mark.parametrize("pair, narrow", [((64, 64), True), ((-64, -64), True),
                                          ((127, 1), True), ((127, 2), False),
                                          ((-100, 29), False)])  # fmt: skip
def test_avx2_takes_vpmaddubsw_only_where_the_pairs_fit_in_int16(pair, narrow):
    """|w0| + |w1| <= 128 for every pair of adjacent input channels: 255 x 128 = 32640 fits in
    int16. At the limit the sums are exact; one past it, the weight is packed for vpmaddwd."""
    wq = np.tile(np.array(pair, np.int8), 128)[None, :, None, None].repeat(32, axis=0)
    wq[1::2, :2] = 0  # channels that differ, and a pair of zeros
    packed = _pack(AVX2)(wq)
    assert (packed.dtype == np.int8) == narrow and int8_pairs_fit(wq) == narrow
    ones = np.ones(32, np.float32)
    actual = _pointwise_of_255(AVX2, packed, np.zeros(32, np.int32), ones, inv_scale=1.0)
    exact = 255 * wq[:, :, 0, 0].astype(np.int64).sum(axis=1)
    np.testing.assert_array_equal(actual, np.broadcast_to(exact, actual.shape))


def test_rule_declines_other_functions():
    a = te.placeholder((4, 4), "float32")
    b = te.compute((4, 4), lambda i, j: a[i, j] * 2, name="double")
    sch = s_tir.Schedule(te.create_prim_func([a, b]))
    assert Int8Gemm().schedule(sch, HOST) is False


def _gaussian_batches(count=20, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(4096).astype(np.float32) for _ in range(count)]


def test_minmax_and_zero_point_exact():
    observer = MinMaxObserver(MinMax())
    observer.observe(np.array([-1.0, 3.0], np.float32))
    q = observer.qparams(symmetric=False)
    assert q.scale == pytest.approx(4.0 / 255) and q.zero_point == round(1.0 / q.scale)
    assert observer.qparams(symmetric=True) == QParams(3.0 / 127, 128)
    relu = qparams_for(0.0, 2.0, symmetric=False)
    assert relu.zero_point == 0  # a non-negative range spends every level on it


def test_histogram_grows_without_losing_counts():
    observer = PercentileObserver(Percentile(bins=64))
    observer.observe(np.array([0.5, -1.0], np.float32))
    observer.observe(np.array([7.0, 0.25], np.float32))  # 7x the first range: doubles thrice
    assert observer.limit == 8.0 and observer.counts.sum() == 4


@pytest.mark.parametrize(
    "observer, low, high",
    [
        (PercentileObserver(Percentile(percentile=99.0)), 2.3, 2.9),  # |x| 99th pct: 2.58
        (EntropyObserver(Entropy()), 2.0, 5.0),
        (MseObserver(Mse()), 2.0, 5.0),
    ],
    ids=["percentile", "entropy", "mse"],
)
def test_clipping_thresholds_on_a_gaussian(observer, low, high):
    for batch in _gaussian_batches():
        observer.observe(batch)
    assert low < observer.threshold() < high
    assert observer.threshold() < max(-observer.low, observer.high)  # clips the tails
