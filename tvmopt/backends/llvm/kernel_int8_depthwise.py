"""The int8 depthwise conv (MobileNet's 3x3 layers) as one TIR function.

    x (float32 or uint8) -> xq = quantize(x), NHWC uint8, zero-point padded (kernel_int8_gemm.py)
                         -> acc[n, oh, ow, c] = sum over taps of xq[n, oh*s + kh*d, ow*s + kw*d, c]
                                                                 * W[kh, kw, c]        (int32)
                         -> y = float(acc + correction[c]) * scale[c]

Each channel has its own 3x3 filter, so there is no inner product for VNNI to take: a tap is
one multiply-add per channel, and the vector runs over L channels of one position, which
channels last makes contiguous. The layer is memory-bound, and the win over float32 is in the
bytes: its input and output cross memory as uint8 (requantize.py), a quarter of float32's.
The weight is packed [KH, KW, C] (C padded to whole vectors) so that a tap's L channels are one
load.
"""

from __future__ import annotations

import numpy as np
from tvm import te

from ...passes.conv_geometry import ConvGeometry
from .kernel_int8_gemm import DEQUANTIZE, DEQUANTIZE_NCHW, quantize_nhwc

DEPTHWISE = "int8_depthwise"


def pack_depthwise(weight: np.ndarray, lanes: int) -> np.ndarray:
    """[C, 1, KH, KW] (int8, or float32 for kernel_depthwise_nhwc.py) -> [KH, KW, C padded to a
    multiple of `lanes`]."""
    channels = weight.shape[0]
    padded = np.zeros((-(-channels // lanes) * lanes, *weight.shape[2:]), weight.dtype)
    padded[:channels] = weight[:, 0]
    return np.ascontiguousarray(padded.transpose(1, 2, 0))


def _taps(xq, weight, geometry: ConvGeometry):
    """int32 accumulators [N, OH, OW, C padded]."""
    kh, kw, channels = (int(d) for d in weight.shape)
    (sh, sw), (dh, dw), (oh, ow) = geometry.strides, geometry.dilation, geometry.out_hw
    rh, rw = te.reduce_axis((0, kh), name="rh"), te.reduce_axis((0, kw), name="rw")

    def value(b, i, j, c):
        pixel = xq[b, i * sh + rh * dh, j * sw + rw * dw, c]
        return te.sum(pixel.astype("int32") * weight[rh, rw, c].astype("int32"), axis=[rh, rw])

    return te.compute((int(xq.shape[0]), oh, ow, channels), value, name=DEPTHWISE)


def int8_depthwise_conv2d(  # noqa: PLR0913 - the layer's tensors, then its compile-time facts
    x,
    weight,
    correction,
    scale,
    *,
    geometry,
    channels,
    inv_scale,
    zero_point,
    layouts=("NHWC", "NHWC"),
):
    """NHWC (or NCHW, `layouts[0]`) input -> NHWC (or NCHW, `layouts[1]`) float output."""
    xq = quantize_nhwc(x, geometry, int(weight.shape[2]), inv_scale, zero_point,
                       channels_last=layouts[0] == "NHWC")  # fmt: skip
    acc = _taps(xq, weight, geometry)
    n, (oh, ow) = int(x.shape[0]), geometry.out_hw

    def dequantized(b, i, j, c):
        return (acc[b, i, j, c] + correction[c]).astype("float32") * scale[c]

    if layouts[1] == "NCHW":
        return te.compute((n, channels, oh, ow), lambda b, c, i, j: dequantized(b, i, j, c),
                          name=DEQUANTIZE_NCHW)  # fmt: skip
    return te.compute((n, oh, ow, channels), dequantized, name=DEQUANTIZE)
