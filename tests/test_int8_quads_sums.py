"""cpu.py's int8_quads sums the depth-8 step's quads by whole-array adds: bit for bit what numpy's
sum over the block axes gave (the reference below, the code it replaced), on float weights whose
magnitudes differ by up to 1e60 (where the order of float adds shows) and on int8 weights at
their extremes; and fit_quads' refit on it equals the refit on the reference."""

from __future__ import annotations

import numpy as np
import pytest

from tvmopt.backends.llvm import cpu
from tvmopt.backends.llvm import int8_quads as quads_module
from tvmopt.backends.llvm.cpu import int8_quads
from tvmopt.backends.llvm.int8_quads import fit_quads
from tvmopt.passes.quantize.convert import quantize_weight

SHAPES = [(5, 16, 1, 1), (7, 13, 1, 1), (4, 8, 3, 3), (3, 21, 2, 2), (2, 8, 1, 3)]


def reference_quads(quantized):
    """int8_quads as it was: numpy's sum over the half and pair axes, in float64."""
    weight = np.asarray(quantized, np.float64)
    out, channels = weight.shape[:2]
    padded = np.zeros((out, -(-channels // 8) * 8, *weight.shape[2:]))
    padded[:, :channels] = weight
    blocks = padded.reshape(out, -1, 2, 2, 2, *weight.shape[2:])
    positive = np.maximum(blocks, 0).sum(axis=(2, 4)).reshape(out, -1)
    negative = np.maximum(-blocks, 0).sum(axis=(2, 4)).reshape(out, -1)
    return positive, negative


def _wide_floats(rng, shape, dtype):
    """Normal weights times 10^u, u uniform in [-30, 30]: sums whose rounding depends on order."""
    return (rng.standard_normal(shape) * 10.0 ** rng.uniform(-30, 30, shape)).astype(dtype)


def _assert_same(got, want):
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_quads_bit_for_bit(shape, dtype):
    rng = np.random.default_rng(sum(shape))
    for _ in range(20):
        weight = _wide_floats(rng, shape, dtype)
        _assert_same(int8_quads(weight), reference_quads(weight))


def test_float_quads_order_where_it_shows():
    """One large and two half-ulp weights in a quad, in every position: rounding depends on
    which two are added first."""
    tiny = 2.0**-53
    for shape in [(1, 8, 1, 1), (1, 8, 3, 3)]:
        for large in range(4):
            weight = np.zeros(shape)
            for slot, channel in enumerate([0, 1, 4, 5]):
                weight[0, channel] = 1.0 if slot == large else tiny
            _assert_same(int8_quads(weight), reference_quads(weight))


@pytest.mark.parametrize("shape", SHAPES)
def test_int8_quads_at_extremes(shape):
    rng = np.random.default_rng(len(shape) + shape[1])
    weight = rng.choice(np.array([-128, -127, -1, 0, 1, 63, 127], np.int8), size=shape)
    _assert_same(int8_quads(weight), reference_quads(weight))


@pytest.mark.parametrize("shape", [(16, 64, 1, 1), (8, 24, 3, 3)])
def test_fit_quads_equals_reference(shape, monkeypatch):
    """Weights with a few outliers per channel (most channels refitted), at 7 bits."""
    rng = np.random.default_rng(shape[1])
    weight = rng.standard_normal(shape).astype(np.float32)
    weight[rng.random(shape) < 0.02] *= 30
    weight[0] = 1.0  # every weight of channel 0 at the peak, all positive: the worst quads
    quantized, scale = quantize_weight(weight, 63)
    got = fit_quads(weight, quantized, scale)
    for module in (quads_module, cpu):
        monkeypatch.setattr(module, "int8_quads", reference_quads)
    want = fit_quads(weight, quantized, scale)
    assert not np.array_equal(got[1], scale)  # refitted
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)
