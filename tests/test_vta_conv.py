"""int8 conv2d lowered to VTA programs: bit-exact with the int32 reference on ResNet's shapes,
latency hiding, and the errors of layers that cannot be laid out."""

import numpy as np
import pytest

from tvmopt.backends.vta.config import DEFAULT
from tvmopt.backends.vta.lower_conv import (
    ConvShape,
    Tiling,
    choose_tiling,
    conv_reference,
    lower_conv,
)
from tvmopt.backends.vta.requantize import Requantize
from tvmopt.backends.vta.simulator import Simulator
from tvmopt.errors import VTAError

RNG = np.random.default_rng(1)


def simulate_conv(channels, size, out_channels, kernel, stride, padding, relu=True, **options):
    x = RNG.integers(-128, 128, (channels, size, size)).astype(np.int8)
    weight = RNG.integers(-128, 128, (out_channels, channels, kernel, kernel)).astype(np.int8)
    bias = RNG.integers(-30000, 30000, out_channels).astype(np.int32)
    requantize = Requantize(shift=11, relu=relu)
    program = lower_conv(x, weight, bias, stride, padding, requantize, **options)
    dram = program.dram.copy()
    counters = Simulator(dram).run(program.insns)
    expected = conv_reference(x, weight, bias, stride, padding, requantize)
    out_h, out_w = expected.shape[1:]
    blocks = program.read("y", dram).reshape(-1, out_h, out_w, 16)
    actual = blocks.transpose(0, 3, 1, 2).reshape(-1, out_h, out_w)[:out_channels]
    return actual, expected, counters


@pytest.mark.parametrize(
    "channels, size, out_channels, kernel, stride, padding",
    [
        (16, 8, 16, 3, 1, 1),
        (20, 9, 40, 3, 2, 1),  # channels not whole blocks, odd sizes, stride 2
        (16, 7, 32, 1, 1, 0),
        (32, 10, 16, 5, 1, 2),
        (64, 56, 64, 3, 1, 1),  # ResNet-18 C2
        (64, 56, 128, 1, 2, 0),  # C5
        (512, 7, 512, 3, 1, 1),  # C12: input channels in several steps
    ],
)
def test_conv_layers_are_bit_exact(channels, size, out_channels, kernel, stride, padding):
    actual, expected, counters = simulate_conv(
        channels, size, out_channels, kernel, stride, padding
    )
    np.testing.assert_array_equal(actual, expected)
    out = expected.shape[1] * expected.shape[2]
    ideal = out * -(-channels // 16) * -(-out_channels // 16) * kernel * kernel
    assert counters.gemm_counter == ideal  # every uop-iteration is a real multiply-accumulate


def test_without_relu_negative_values_survive():
    actual, expected, _ = simulate_conv(16, 6, 16, 3, 1, 1, relu=False)
    np.testing.assert_array_equal(actual, expected)
    assert (expected < 0).any()


def test_latency_hiding_raises_gemm_utilization():
    _, _, serial = simulate_conv(64, 56, 64, 3, 1, 1, double_buffer=False)
    _, _, hidden = simulate_conv(64, 56, 64, 3, 1, 1)
    assert hidden.cycles < serial.cycles
    assert hidden.gemm_utilization > serial.gemm_utilization + 0.1


def test_a_given_tiling_is_used_and_checked():
    actual, expected, _ = simulate_conv(32, 8, 32, 3, 1, 1, tiling=Tiling(co=1, rows=3, ci=1))
    np.testing.assert_array_equal(actual, expected)
    with pytest.raises(VTAError, match="does not fit conv"):
        simulate_conv(32, 8, 32, 3, 1, 1, tiling=Tiling(co=2, rows=8, ci=3))


def test_layers_that_cannot_be_laid_out_are_clear_errors():
    with pytest.raises(VTAError, match="padding 16 exceeds the DMA's 15"):
        lower_conv(np.zeros((16, 40, 40), np.int8), np.zeros((16, 16, 3, 3), np.int8),
                   np.zeros(16, np.int32), 1, 16, Requantize(4))  # fmt: skip
    wide = ConvShape(
        channels=1, height=3, width=3000, out_channels=1, kernel=3, stride=1, padding=1
    )
    with pytest.raises(VTAError, match="no tiling of conv .* fits the on-chip buffers"):
        choose_tiling(wide, DEFAULT)


def test_an_8x8_core_is_bit_exact_too():
    from tvmopt.backends.vta.config import VTAConfig

    config = VTAConfig(log_block=3, log_wgt_buff_size=16, log_acc_buff_size=15)
    x = RNG.integers(-128, 128, (20, 9, 9)).astype(np.int8)
    weight = RNG.integers(-128, 128, (12, 20, 3, 3)).astype(np.int8)
    bias = RNG.integers(-3000, 3000, 12).astype(np.int32)
    requantize = Requantize(shift=10, relu=True)
    program = lower_conv(x, weight, bias, 2, 1, requantize, config)
    dram = program.dram.copy()
    Simulator(dram, config).run(program.insns)
    expected = conv_reference(x, weight, bias, 2, 1, requantize)
    blocks = program.read("y", dram).reshape(-1, *expected.shape[1:], 8)
    actual = blocks.transpose(0, 3, 1, 2).reshape(-1, *expected.shape[1:])[:12]
    np.testing.assert_array_equal(actual, expected)
