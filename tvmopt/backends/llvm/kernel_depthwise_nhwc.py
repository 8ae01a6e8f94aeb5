"""The float32 depthwise conv2d channels last (MobileNet's 3x3 layers), as one TIR function:

    x [N, H, W, C] -> padded[n, h, w, c]            (zero padding, materialized; an NCHW x is
                                                     transposed here too)
        -> acc[n, oh, ow, c] = sum over taps of
                                   padded[n, oh*s + kh*d, ow*s + kw*d, c] * W[kh, kw, c]
        -> y[n, oh, ow, c] = acc[..., c] + bias[c]

Each channel has its own filter, so a tap is one multiply-add per channel and the vector runs over L
channels of one position (a vector: cpu.py), which channels last makes contiguous; the int8
depthwise kernel (kernel_int8_depthwise.py) has the same shape. With it, a MobileNet runs channels
last from its first conv to its global pool, and its pointwise convs take the panel GEMM. The block
names are what the CPU schedule rule (rule_depthwise_nhwc.py) looks for.
"""

from __future__ import annotations

from tvm import te

from ...passes.conv_geometry import ConvGeometry
from .kernel_conv_nhwc import padded_nhwc

TAPS, OUTPUT = "nhwc_depthwise", "nhwc_depthwise_bias"


def is_depthwise(groups: int, weight_shape, in_channels: int) -> bool:
    """One input and one output channel per group: weight [C, 1, KH, KW], groups == C."""
    out, per_group = int(weight_shape[0]), int(weight_shape[1])
    return groups == in_channels == out and per_group == 1


def depthwise_conv2d_nhwc(x, packed, bias, *, geometry: ConvGeometry, channels: int,
                          channels_last=True):  # fmt: skip
    """NHWC (or, not `channels_last`, NCHW) float32 input -> NHWC output; `packed` [KH, KW, C
    padded to whole vectors] (kernel_int8_depthwise.pack_depthwise), `bias` [channels] or None."""
    kh, kw, width = (int(d) for d in packed.shape)
    # its channels padded to whole vectors with zeros, as the packed weight's are
    padded = padded_nhwc(x, geometry, channels_last, width)
    (sh, sw), (dh, dw), (oh, ow) = geometry.strides, geometry.dilation, geometry.out_hw
    rh, rw = te.reduce_axis((0, kh), name="rh"), te.reduce_axis((0, kw), name="rw")

    def tap_sum(b, i, j, c):
        pixel = padded[b, i * sh + rh * dh, j * sw + rw * dw, c]
        return te.sum(pixel * packed[rh, rw, c], axis=[rh, rw])

    acc = te.compute((int(x.shape[0]), oh, ow, width), tap_sum, name=TAPS)

    def value(b, i, j, c):
        return acc[b, i, j, c] if bias is None else acc[b, i, j, c] + bias[c]

    return te.compute((int(x.shape[0]), oh, ow, channels), value, name=OUTPUT)
