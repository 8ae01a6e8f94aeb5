"""Pointwise convs whose own register tile fills more than half of the budget but well below it
(backends/llvm/padded_positions.flat_positions): padded to a fuller tile on AVX2, unchanged on
AVX-512, against torch on both builds."""

from __future__ import annotations

import pytest

from tvmopt.backends import resolve_target
from tvmopt.backends.llvm.cpu import cpu_of
from tvmopt.backends.llvm.padded_positions import flat_positions

from .helpers import check_nhwc_conv

HOST = resolve_target(None)
AVX2 = resolve_target({"kind": "llvm", "mcpu": "x86-64-v3"})
AVX512 = resolve_target({"kind": "llvm", "mcpu": "x86-64-v4"})


def test_flat_positions_fill_avx2_tiles():
    budget = cpu_of(AVX2).accumulators
    assert flat_positions(49, 160, budget) == 54  # 7x7: 7 x 1 -> 6 x 2
    assert flat_positions(3136, 18, budget) == 3138  # 56x56: 4 x 2 -> 6 x 2
    assert flat_positions(196, 60, budget) == 198  # 14x14: 4 x 2 -> 6 x 2
    assert flat_positions(3025, 8, budget) == 3025  # 55x55's 5 x 2: within the gain
    assert flat_positions(169, 125, budget) == 180  # padded_positions' own case stays


def test_flat_positions_leave_avx512_tiles():
    budget = cpu_of(AVX512).accumulators
    assert flat_positions(49, 80, budget) == 49  # 7 x 2 of 15
    assert flat_positions(3136, 9, budget) == 3136  # 14 x 1 of 15
    assert flat_positions(196, 30, budget) == 196  # 7 x 2


CONVS = [  # (N, C, H, W, OC, kernel, stride, pad, dilation): pointwise, odd sizes
    (1, 37, 7, 7, 200, 1, 1, 0, 1),  # 25 panels on AVX2: 49 -> 54 positions
    (1, 20, 14, 14, 80, 1, 1, 0, 1),  # 196 -> 198
    (2, 13, 9, 7, 48, 1, 1, 0, 1),  # a batch of 2, 63 positions each
    (1, 24, 15, 15, 40, 1, 2, 0, 1),  # strided: 8x8 outputs
]


@pytest.mark.parametrize("target", [HOST, AVX2], ids=["host", "avx2"])
@pytest.mark.parametrize("shape", CONVS)
def test_flat_padded_conv_matches_torch(target, shape):
    check_nhwc_conv(shape, target)
