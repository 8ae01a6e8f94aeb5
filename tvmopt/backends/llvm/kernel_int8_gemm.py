"""The int8 layer as one TIR function: quantize, int8 GEMM, dequantize.

    x (float32 or uint8, NHWC) -> xq[n, h, w, c] = quantize(x), uint8, zero-point padded
                                  (spatially, and channels to a multiple of 4)
                -> acc[n, oh, ow, no, ni] = sum over taps and channels of
                       xq[n, oh*s + kh*d, ow*s + kw*d, c] * W[no, kh, kw, c / 4, ni, c % 4]
                   (ni < L: one vector of int32 accumulators, 16 on AVX-512, 8 on AVX2)
                -> y = float(acc + correction[o]) * scale[o], NHWC (conv) or [M, N] (matmul)

Channels last on both sides (passes/quantize/convert.py permutes a graph's NCHW tensors to it and
back, and layout.py cancels the pairs between int8 layers), and in fours: one step of the inner
product is 4 uint8 of one position times a packed Lx4 int8 weight block, exactly the operands of
VNNI's vpdpbusd (16x4 in a zmm, 8x4 in a ymm), read in place (no im2col). A matmul is the 1x1 case
over a [1, 1, M, K] input; a pointwise conv is one GEMM over its positions. `correction` folds the
activation's zero point (-zp * sum W) and the int32 bias (bias / (act_scale * w_scale)) into one
vector; `scale` is act_scale * w_scale per output channel. The block names are what the CPU schedule
rule (rule_int8_gemm.py) looks for.

`signed` kernels (CUDA's, whose dp4a multiplies int8 by int8) read the activation as
int8 = uint8 - 128, zero point z - 128: the same values, the correction built for them
(convert.py). Everywhere else in the graph activations stay uint8.
"""

from __future__ import annotations

import numpy as np
from tvm import te, tirx

from ...passes.conv_geometry import ConvGeometry, nchw_as_nhwc
from ...passes.quantize.convert import SIGNED_SHIFT

QUANTIZE, GEMM, DEQUANTIZE = "int8_quantize", "int8_gemm", "int8_dequantize"
DEQUANTIZE_NCHW = "int8_dequantize_nchw"  # the output transposed as it is written
DEPTH = 4  # reduction steps of one vpdpbusd (and of one dp4a): the default block's
# the activation's storage: (dtype, shift, lowest, highest). "int16": the values of uint8, widened
# for an int16 weight (vpmaddwd multiplies int16 by int16; cpu.py's INT8_STEPS)
STORAGE = {"uint8": ("uint8", 0, 0.0, 255.0), "int8": ("int8", SIGNED_SHIFT, -128.0, 127.0),
           "int16": ("int16", 0, 0.0, 255.0)}  # fmt: skip


def pack_weight(quantized: np.ndarray, lanes: int, depth: int = DEPTH, dtype="int8", parts=1):  # noqa: PLR0913
    """[O, C, KH, KW] int8 -> [O/L, KH, KW, C/D, L, D] of `dtype` for blocks of L = `lanes`
    output channels by D = `depth` input channels (cpu.py's int8 block), zero-padded; a block
    in `parts` (the depth-8 vpmaddubsw step's 2): [O/L, KH, KW, C/D, parts, L, D/parts]."""
    out, channels, kh, kw = quantized.shape
    padded = np.zeros((-(-out // lanes) * lanes, -(-channels // depth) * depth, kh, kw), dtype)
    padded[:out, :channels] = quantized
    part = depth // parts
    blocks = padded.reshape(-1, lanes, padded.shape[1] // depth, parts, part, kh, kw)
    packed = blocks.transpose(0, 5, 6, 2, 3, 1, 4)
    return np.ascontiguousarray(packed if parts > 1 else packed[:, :, :, :, 0])


def packed_block(packed) -> tuple[int, int, int]:
    """(L, D, parts) of a packed weight's blocks (pack_weight)."""
    block = [int(d) for d in packed.shape[4:]]
    parts, lanes, part = block if len(block) == 3 else (1, *block)
    return lanes, parts * part, parts


def packed_channels(packed) -> int:
    """The input channels a packed weight covers, padding included."""
    return int(packed.shape[3]) * packed_block(packed)[1]


def storage_for(packed, signed: bool) -> str:
    """How the GEMM reads its activation: int8 for CUDA's dp4a (`signed`), int16 beside an int16
    weight, else uint8."""
    return "int8" if signed else "int16" if packed.dtype == "int16" else "uint8"


def _quantize(value, inv_scale: float, zero_point: int, storage: str = "uint8"):
    dtype, shift, low, high = STORAGE[storage]
    offset = tirx.const(zero_point - shift, "float32")
    q = tirx.round(value * tirx.const(inv_scale, "float32")) + offset
    return tirx.Cast(dtype, tirx.max(tirx.min(q, high), low))


def _padded_read(inside, read, inv_scale, zero_point, storage="uint8"):  # noqa: PLR0913
    """The quantized value, or the zero point outside the input; a uint8 input arrives already
    quantized with these qparams (requantize.py) and is only moved (shifted to int8, or widened
    to int16, as `storage` says)."""
    dtype, shift, _, _ = STORAGE[storage]
    if read.dtype != "uint8":
        value = _quantize(read, inv_scale, zero_point, storage)
    elif storage != "uint8":
        value = (read.astype("int32") - shift).astype(dtype)
    else:
        value = read
    return tirx.if_then_else(inside, value, tirx.const(zero_point - shift, dtype))


def quantize_nhwc(  # noqa: PLR0913 - the tensor, then its compile-time facts
    x, geometry, channels: int, inv_scale, zero_point, channels_last=True, storage="uint8"
):
    """NHWC (or NCHW) float or uint8 -> NHWC in `storage` (STORAGE), padded spatially and to
    `channels` with the zero point."""
    n, h, w, c = (int(d) for d in x.shape) if channels_last else nchw_as_nhwc(x.shape)
    (ph, pw), (hp, wp) = geometry.padding, geometry.reach()

    def value(b, i, j, k):
        row, col = i - ph, j - pw
        inside = tirx.all(k < c, row >= 0, row < h, col >= 0, col < w)
        clamped = [tirx.min(k, c - 1), tirx.min(tirx.max(row, 0), h - 1),
                   tirx.min(tirx.max(col, 0), w - 1)]  # fmt: skip
        k, row, col = clamped
        pixel = x[b, row, col, k] if channels_last else x[b, k, row, col]
        return _padded_read(inside, pixel, inv_scale, zero_point, storage)

    return te.compute((n, hp, wp, channels), value, name=QUANTIZE)


def quantized_input(  # noqa: PLR0913 - the tensor, then its compile-time facts
    x, geometry, channels: int, inv_scale, zero_point, channels_last=True, storage="uint8"
):
    """quantize_nhwc's result, or `x` itself where that would be a copy: a uint8 NHWC input the
    window never reads past, with its channels in whole blocks (ResNet's and MobileNet's
    pointwise convs read the previous layer's output in place). A kernel that reads int8 or int16
    always copies: the copy is where the shift or the widening happens."""
    shape = [int(d) for d in x.shape]
    inside = all(r <= d for r, d in zip(geometry.reach(), shape[1:3], strict=True))
    in_place = (
        channels_last and x.dtype == "uint8" and shape[3] == channels
        and geometry.padding == (0, 0) and inside and storage == "uint8"
    )  # fmt: skip
    if in_place:
        return x
    return quantize_nhwc(x, geometry, channels, inv_scale, zero_point, channels_last, storage)


def quantize_rows(x, channels: int, inv_scale: float, zero_point: int, storage: str = "uint8"):
    """[M, K] float -> [1, 1, M, channels] in `storage` (STORAGE), zero-point padded."""
    rows, width = (int(d) for d in x.shape)

    def value(b, i, m, k):
        pixel = x[m, tirx.min(k, width - 1)]
        return _padded_read(k < width, pixel, inv_scale, zero_point, storage)

    return te.compute((1, 1, rows, channels), value, name=QUANTIZE)


def gemm(xq, packed, geometry: ConvGeometry, over_positions: bool = False):
    """int32 accumulators [N, OH, OW, N/L, L] of the packed weight [N/L, KH, KW, C/D, L, D]
    (or [..., C/D, parts, L, D/parts]); [N, 1, OH*OW, N/L, L] `over_positions` of a pointwise
    conv (p reads xq's p // W, p % W)."""
    blocks, kh, kw, steps = (int(d) for d in packed.shape[:4])
    lanes, depth, parts = packed_block(packed)
    (sh, sw), (dh, dw), (oh, ow) = geometry.strides, geometry.dilation, geometry.out_hw
    if over_positions:
        kh = kw = 1  # the unit window axes keep the loop nest the schedule rule expects
        width = int(xq.shape[2])
        oh, ow = 1, int(xq.shape[1]) * width
    rh, rw = te.reduce_axis((0, kh), name="rh"), te.reduce_axis((0, kw), name="rw")
    ko = te.reduce_axis((0, steps), name="ko")
    # the block's parts (depth 8: two L x 4 halves) are a reduction axis of their own
    parts_axis = [te.reduce_axis((0, parts), name="kp")] if parts > 1 else []
    ki = te.reduce_axis((0, depth // parts), name="ki")
    axes = [rh, rw, ko, *parts_axis, ki]

    def value(b, i, j, no, ni):
        if over_positions:
            row, col = j // width + rh, j % width + rw
        else:
            row, col = i * sh + rh * dh, j * sw + rw * dw
        channel = ko * depth + ki
        if parts_axis:
            channel = ko * depth + parts_axis[0] * (depth // parts) + ki
        pixel = xq[b, row, col, channel]
        weight = packed[(no, rh, rw, ko, *parts_axis, ni, ki)]
        return te.sum(pixel.astype("int32") * weight.astype("int32"), axis=axes)

    return te.compute((int(xq.shape[0]), oh, ow, blocks, lanes), value, name=GEMM)


def _dequantize(acc, correction, scale, position, channel):
    lanes = int(acc.shape[-1])
    total = acc[(*position, channel // lanes, channel % lanes)] + correction[channel]
    return total.astype("float32") * scale[channel]


def int8_conv2d(  # noqa: PLR0913 - the layer's tensors, then its compile-time facts
    x,
    packed,
    correction,
    scale,
    *,
    geometry,
    channels,
    inv_scale,
    zero_point,
    layouts=("NHWC", "NHWC"),
    signed=False,
):
    """NHWC input -> NHWC float output of `channels` channels, through int8; either side may be
    NCHW instead (`layouts`: input, output), next to a float layer that wants it. A pointwise conv
    runs as one GEMM over its H*W positions, so its register tiles span rows of the map (a 7x7
    map tiles as 49 positions, not as 7 rows of 7)."""
    depth, qparams = packed_channels(packed), (inv_scale, zero_point)
    n, (oh, ow) = int(x.shape[0]), geometry.out_hw
    storage = storage_for(packed, signed)
    xq = quantized_input(x, geometry, depth, *qparams, layouts[0] == "NHWC", storage)
    # over positions only when written channels last: an NCHW epilogue waits for whole rows
    over_positions = geometry.pointwise() and layouts[1] == "NHWC"
    acc = gemm(xq, packed, geometry, over_positions)
    if over_positions:
        position = lambda b, i, j: (b, 0, i * ow + j)  # noqa: E731
    else:
        position = lambda b, i, j: (b, i, j)  # noqa: E731
    if layouts[1] == "NCHW":
        return te.compute(
            (n, channels, oh, ow),
            lambda b, c, i, j: _dequantize(acc, correction, scale, position(b, i, j), c),
            name=DEQUANTIZE_NCHW,
        )
    return te.compute(
        (n, oh, ow, channels),
        lambda b, i, j, c: _dequantize(acc, correction, scale, position(b, i, j), c),
        name=DEQUANTIZE,
    )


def int8_matmul(  # noqa: PLR0913 - the layer's tensors, then its compile-time facts
    x, packed, correction, scale, *, columns, inv_scale, zero_point, signed=False
):
    """[M, K] float input -> [M, columns] float output, through int8."""
    rows, depth = int(x.shape[0]), packed_channels(packed)
    geometry = ConvGeometry(out_hw=(1, rows))
    xq = quantize_rows(x, depth, inv_scale, zero_point, storage_for(packed, signed))
    acc = gemm(xq, packed, geometry)
    return te.compute(
        (rows, columns),
        lambda m, c: _dequantize(acc, correction, scale, (0, 0, m), c),
        name=DEQUANTIZE,
    )
