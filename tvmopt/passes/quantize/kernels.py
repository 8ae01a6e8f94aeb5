"""The int8 layer as one TIR function: quantize, int8 GEMM, dequantize.

    x (float32) -> xq[n, h, w, c] = quantize(x), uint8, zero-point padded (channels to x4)
                -> acc[n, oh, ow, no, ni] = sum over taps and channels of
                       xq[n, oh*s + kh*d, ow*s + kw*d, c] * W[no, kh, kw, c / 4, ni, c % 4]
                -> y = float(acc + correction[o]) * scale[o], NCHW (conv) or [M, N] (matmul)

Channels last and in fours, one step of the inner product is 4 uint8 of one position times a
packed 16x4 int8 weight block: exactly the operands of VNNI's vpdpbusd, read in place (no
im2col). A matmul is the 1x1 case over a [1, 1, M, K] input. `correction` folds the activation's
zero point (-zp * sum W) and the int32 bias (bias / (act_scale * w_scale)) into one vector;
`scale` is act_scale * w_scale per output channel. The block names are what the CPU schedule
rule (backends/llvm/rule_int8_gemm.py) looks for.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvm import te, tirx

QUANTIZE, GEMM, DEQUANTIZE = "int8_quantize", "int8_gemm", "int8_dequantize"
LANES, DEPTH = 16, 4  # output channels x reduction steps of one vpdpbusd


@dataclass(frozen=True)
class ConvGeometry:
    """A conv2d's window over its input; a matmul is a 1x1 window."""

    kernel: tuple[int, int] = (1, 1)
    strides: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)  # top, left: the input is padded by these
    dilation: tuple[int, int] = (1, 1)
    out_hw: tuple[int, int] = (1, 1)

    def reach(self) -> tuple[int, int]:
        """The rows and columns of the padded input the window reads."""
        return tuple(
            (out - 1) * stride + (k - 1) * dil + 1
            for out, stride, k, dil in zip(
                self.out_hw, self.strides, self.kernel, self.dilation, strict=True
            )
        )


def _quantize(value, inv_scale: float, zero_point: int):
    q = tirx.round(value * tirx.const(inv_scale, "float32")) + tirx.const(zero_point, "float32")
    return tirx.Cast("uint8", tirx.max(tirx.min(q, 255.0), 0.0))


def _padded_read(inside, read, inv_scale, zero_point):
    """The quantized value, or the zero point outside the input; a uint8 input arrives already
    quantized with these qparams (requantize.py) and is only moved."""
    value = read if read.dtype == "uint8" else _quantize(read, inv_scale, zero_point)
    return tirx.if_then_else(inside, value, tirx.const(zero_point, "uint8"))


def quantize_nchw(x, geometry: ConvGeometry, channels: int, inv_scale: float, zero_point: int):
    """NCHW float -> NHWC uint8, padded spatially and to `channels` with the zero point."""
    n, c, h, w = (int(d) for d in x.shape)
    (ph, pw), (hp, wp) = geometry.padding, geometry.reach()

    def value(b, i, j, k):
        row, col = i - ph, j - pw
        inside = tirx.all(k < c, row >= 0, row < h, col >= 0, col < w)
        clamped = [tirx.min(k, c - 1), tirx.min(tirx.max(row, 0), h - 1),
                   tirx.min(tirx.max(col, 0), w - 1)]  # fmt: skip
        return _padded_read(inside, x[b, clamped[0], clamped[1], clamped[2]], inv_scale, zero_point)

    return te.compute((n, hp, wp, channels), value, name=QUANTIZE)


def quantize_rows(x, channels: int, inv_scale: float, zero_point: int):
    """[M, K] float -> [1, 1, M, channels] uint8, zero-point padded."""
    rows, width = (int(d) for d in x.shape)

    def value(b, i, m, k):
        return _padded_read(k < width, x[m, tirx.min(k, width - 1)], inv_scale, zero_point)

    return te.compute((1, 1, rows, channels), value, name=QUANTIZE)


def gemm(xq, packed, geometry: ConvGeometry):
    """int32 accumulators [N, OH, OW, N/16, 16] of the packed weight [N/16, KH, KW, C/4, 16, 4]."""
    blocks, kh, kw, steps = (int(d) for d in packed.shape[:4])
    (sh, sw), (dh, dw), (oh, ow) = geometry.strides, geometry.dilation, geometry.out_hw
    rh, rw = te.reduce_axis((0, kh), name="rh"), te.reduce_axis((0, kw), name="rw")
    ko, ki = te.reduce_axis((0, steps), name="ko"), te.reduce_axis((0, DEPTH), name="ki")

    def value(b, i, j, no, ni):
        pixel = xq[b, i * sh + rh * dh, j * sw + rw * dw, ko * DEPTH + ki]
        weight = packed[no, rh, rw, ko, ni, ki]
        return te.sum(pixel.astype("int32") * weight.astype("int32"), axis=[rh, rw, ko, ki])

    return te.compute((int(xq.shape[0]), oh, ow, blocks, LANES), value, name=GEMM)


def _dequantize(acc, correction, scale, position, channel):
    total = acc[(*position, channel // LANES, channel % LANES)] + correction[channel]
    return total.astype("float32") * scale[channel]


def int8_conv2d(x, packed, correction, scale, *, geometry, channels, inv_scale, zero_point):
    """NCHW float input -> NCHW float output of `channels` channels, through int8."""
    depth = int(packed.shape[3]) * DEPTH
    acc = gemm(quantize_nchw(x, geometry, depth, inv_scale, zero_point), packed, geometry)
    n, (oh, ow) = int(x.shape[0]), geometry.out_hw
    return te.compute(
        (n, channels, oh, ow),
        lambda b, c, i, j: _dequantize(acc, correction, scale, (b, i, j), c),
        name=DEQUANTIZE,
    )


def int8_matmul(x, packed, correction, scale, *, columns, inv_scale, zero_point):
    """[M, K] float input -> [M, columns] float output, through int8."""
    rows, depth = int(x.shape[0]), int(packed.shape[3]) * DEPTH
    geometry = ConvGeometry(out_hw=(1, rows))
    acc = gemm(quantize_rows(x, depth, inv_scale, zero_point), packed, geometry)
    return te.compute(
        (rows, columns),
        lambda m, c: _dequantize(acc, correction, scale, (0, 0, m), c),
        name=DEQUANTIZE,
    )
