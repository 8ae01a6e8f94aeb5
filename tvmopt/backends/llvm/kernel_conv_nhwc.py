"""The float32 conv2d channels last, as one TIR function: pad, GEMM over packed weights, bias.

    x [N, H, W, C] -> padded[n, h, w, c]  (zero padding, materialized: windows overlap;
                                           an NCHW x is transposed here too)
        -> acc[n, oh, ow, no, ni] = sum over taps and channels of
               padded[n, oh*s + kh*d, ow*s + kw*d, c] * W[no, kh, kw, c, ni]
        -> y[n, oh, ow, o] = acc[..., o / L, o % L] + bias[o]

The weight is packed at compile time into panels of L output channels (one vector of float32: 16 on
AVX-512, 8 on AVX2, 4 on NEON; cpu.py), contiguous over the whole window and all input channels: one
step of the inner product broadcasts an input value and loads one vector of the panel, so the
accumulators of a tile of positions x panels stay in registers (the int8 kernel,
kernel_int8_gemm.py, has the same shape with VNNI steps of 4). A pointwise conv is one GEMM over all
H*W positions, so a 7x7 map tiles as 49 positions rather than 7 rows of 7. The block names are what
the CPU schedule rule (rule_conv_nhwc.py) looks for.
"""

from __future__ import annotations

import numpy as np
from tvm import te, tirx

from ...passes.conv_geometry import ConvGeometry, nchw_as_nhwc
from .padded_positions import flat_positions, padded_panels, padded_positions

PAD, GEMM, OUTPUT = "pad_temp", "nhwc_gemm", "nhwc_bias"


def pack_weight(weight_oihw: np.ndarray, lanes: int, panels: int | None = None) -> np.ndarray:
    """[O, C, KH, KW] -> [O/L, KH, KW, C, L] for panels of L = `lanes` output channels, the output
    channels zero-padded to whole panels (to `panels` of them, when given)."""
    out, channels, kh, kw = weight_oihw.shape
    panels = -(-out // lanes) if panels is None else panels
    padded = np.zeros((panels * lanes, channels, kh, kw), np.float32)
    padded[:out] = weight_oihw
    panels = padded.reshape(-1, lanes, channels, kh, kw)
    return np.ascontiguousarray(panels.transpose(0, 3, 4, 2, 1))


def padded_nhwc(x, geometry: ConvGeometry, channels_last: bool, width: int | None = None,
                extent: tuple[int, int] | None = None):  # fmt: skip
    """The input NHWC with the window's zero padding, out to `extent` rows and columns (default:
    those the window reaches), and its channels zero-padded to `width` when given; the input
    itself when it is NHWC already and needs none of that. An NCHW input (the network's image)
    is transposed here, as it is padded."""
    (ph, pw), (hp, wp) = geometry.padding, extent or geometry.reach()
    n, h, w, c = (int(d) for d in x.shape) if channels_last else nchw_as_nhwc(x.shape)
    width = c if width is None else width
    if channels_last and (ph, pw) == (0, 0) and width == c and hp <= h and wp <= w:
        return x

    def value(b, i, j, k):
        row, col, channel = i - ph, j - pw, k if width == c else tirx.min(k, c - 1)
        inside = tirx.all(row >= 0, row < h, col >= 0, col < w, *([k < c] if width > c else []))
        pixel = x[b, row, col, channel] if channels_last else x[b, channel, row, col]
        return tirx.if_then_else(inside, pixel, tirx.const(0.0, x.dtype))

    return te.compute((n, hp, wp, width), value, name=PAD)


def window(padded, geometry: ConvGeometry, kh: int, kw: int, positions: int | None = None):
    """The GEMM's positions, the window's reduction axes (rh, rw), and pixel(b, i, j, channel):
    the padded input each position reads at them. Positions are [N, OH, OW], or [N, 1, P] over
    flattened positions p = i * OW + j, read in place: `positions` of them (the last real one
    read again beyond OH * OW: padded_positions.py), or all OH * OW of a pointwise conv."""
    (sh, sw), (dh, dw), (oh, ow) = geometry.strides, geometry.dilation, geometry.out_hw
    rh, rw = te.reduce_axis((0, kh), name="rh"), te.reduce_axis((0, kw), name="rw")
    n = int(padded.shape[0])
    if positions is None and geometry.pointwise():
        positions = oh * ow
    if positions is not None:

        def pixel(b, i, p, channel):
            q = p if positions == oh * ow else tirx.min(p, oh * ow - 1)
            return padded[b, q // ow * sh + rh * dh, q % ow * sw + rw * dw, channel]

        return (n, 1, positions), (rh, rw), pixel

    def pixel(b, i, j, channel):
        return padded[b, i * sh + rh * dh, j * sw + rw * dw, channel]

    return (n, oh, ow), (rh, rw), pixel


def _gemm(padded, packed, geometry: ConvGeometry, positions: int | None):
    panels, kh, kw, channels, lanes = (int(d) for d in packed.shape)
    shape, (rh, rw), pixel = window(padded, geometry, kh, kw, positions)
    rc = te.reduce_axis((0, channels), name="rc")

    def value(b, i, j, no, ni):
        return te.sum(pixel(b, i, j, rc) * packed[no, rh, rw, rc, ni], axis=[rh, rw, rc])

    return te.compute((*shape, panels, lanes), value, name=GEMM)


def weight_panels(geometry: ConvGeometry, channels: int, lanes: int, accumulators: int) -> int:
    """Panels of `lanes` output channels the packed weight holds: whole panels for `channels`,
    made even where that tiles the GEMM's positions better (padded_positions.padded_panels);
    `accumulators`: the register budget (cpu.py), 0 for never padded."""
    panels = -(-channels // lanes)
    if not accumulators:
        return panels
    (oh, ow) = geometry.out_hw
    return padded_panels(oh * ow if geometry.pointwise() else ow, panels, accumulators)


def gemm_positions(geometry: ConvGeometry, panels: int, accumulators: int) -> int | None:
    """The flattened positions the GEMM computes (padded_positions.py), or None for rows and
    columns: a pointwise conv is one GEMM over its positions, a windowed one too where its
    columns divide badly into register tiles of `accumulators` (0: never padded)."""
    (oh, ow), flat = geometry.out_hw, geometry.pointwise()
    if accumulators and padded_positions(ow, panels, accumulators) != ow:
        flat = True
    if not flat:
        return None
    return flat_positions(oh * ow, panels, accumulators) if accumulators else oh * ow


def conv2d_nhwc(x, packed, bias, *, geometry: ConvGeometry, channels: int, channels_last=True,
                accumulators: int = 0):  # fmt: skip
    """NHWC (or, not `channels_last`, NCHW) float32 input -> NHWC output of `channels` channels
    (`bias` [channels], or None); with `accumulators` (the register budget: cpu.py), positions
    padded to whole register tiles where they divide badly."""
    positions = gemm_positions(geometry, int(packed.shape[0]), accumulators)
    acc = _gemm(padded_nhwc(x, geometry, channels_last), packed, geometry, positions)
    n, (oh, ow), lanes = int(x.shape[0]), geometry.out_hw, int(packed.shape[-1])

    def position(b, i, j):
        return (b, i, j) if positions is None else (b, 0, i * ow + j)

    def value(b, i, j, o):
        total = acc[(*position(b, i, j), o // lanes, o % lanes)]
        return total if bias is None else total + bias[o]

    return te.compute((n, oh, ow, channels), value, name=OUTPUT)
