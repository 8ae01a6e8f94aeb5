"""The float32 grouped conv2d channels last (ShuffleNet's and ResNeXt's), as one TIR function:
each group a GEMM over its own weight panels, in the panel GEMM that dense convs take.

    x [N, H, W, C] -> padded[n, h, w, c]         (zero padding, materialized; an NCHW x is
                                                  transposed here too)
        -> acc[n, oh, ow, g, c] = sum over taps and the group's Ci input channels k of
               padded[n, oh*s + kh*d, ow*s + kw*d, source(g * Ci + k)]
               * W[g * P + c / L, kh, kw, k, c % L]
        -> y[n, oh, ow, o] = acc[..., o / Co, o % Co] + bias[o]

The weight is packed into panels of L output channels (a vector: cpu.py) that never straddle a
group: each group's Co output channels are zero-padded to P whole panels (ShuffleNet's 34 to
40 on AVX2), so a panel reduces over its own group's Ci inputs only, as a dense panel reduces
over all C. The input channel is a scalar broadcast in the GEMM's step, so reading it through a
permutation `source` costs no vector work: a channel shuffle before the conv (ShuffleNet's,
passes/channel_shuffle.py) is folded in here as a table of channels rather than a copy.
"""

from __future__ import annotations

import numpy as np
from tvm import te

from ...passes.conv_geometry import ConvGeometry
from .kernel_conv_nhwc import padded_nhwc, window

GEMM, OUTPUT = "nhwc_group_gemm", "nhwc_group_bias"
MAX_PADDING = 1.5  # at most this many weights (and multiply-adds) per real one, panels padded


def panels_per_group(out_per_group: int, lanes: int) -> int:
    return -(-out_per_group // lanes)


def pays(groups: int, weight_shape, lanes: int) -> bool:
    """Whether a grouped conv's panels waste little: ShuffleNet's groups of 28-136 outputs do
    (at most 1.2x on AVX2); ResNeXt-50's of 4 would compute 2x (4x on AVX-512)."""
    per_group = int(weight_shape[0]) // groups
    return panels_per_group(per_group, lanes) * lanes <= MAX_PADDING * per_group


def panel_lanes(groups: int, weight_shape, lanes: int) -> int | None:
    """The panel width for a grouped conv: the target's vector, or half of it where whole
    vectors would be mostly padding (ShuffleNet v1's groups of 6-60 outputs in AVX-512's 16
    lanes: ymm panels there ran 1.9x faster than keeping the model NCHW); None: neither pays.
    Never below 8 lanes (AVX2's xmm halves: unmeasured, the NCHW rules stay)."""
    for width in (lanes, lanes // 2):
        if width >= 8 and pays(groups, weight_shape, width):
            return width
    return None


def pack_group_weight(weight_oihw: np.ndarray, groups: int, lanes: int) -> np.ndarray:
    """[O, Ci, KH, KW] -> [G * P, KH, KW, Ci, L]: each group's O/G output channels zero-padded to
    P whole panels of L = `lanes`."""
    out, per_group_in, kh, kw = weight_oihw.shape
    per_group = out // groups
    width = panels_per_group(per_group, lanes) * lanes
    padded = np.zeros((groups, width, per_group_in, kh, kw), np.float32)
    padded[:, :per_group] = weight_oihw.reshape(groups, per_group, per_group_in, kh, kw)
    panels = padded.reshape(-1, lanes, per_group_in, kh, kw)
    return np.ascontiguousarray(panels.transpose(0, 3, 4, 2, 1))


def _grouped_gemm(padded, packed, geometry: ConvGeometry, groups: int, source):  # noqa: PLR0913
    """acc[n, i, j, g, c]: group g's output channel c, its panels' lanes (padding included).
    Output channels by group, rather than by panel, so that the epilogue reads the accumulator
    at (o / Co, o % Co), indices the schedule can solve for a tile of panels; the rule splits c
    into panels and lanes again (rule_group_conv_nhwc.py)."""
    panels, kh, kw, per_group_in, lanes = (int(d) for d in packed.shape)
    per_group = panels // groups  # panels
    positions, (rh, rw), pixel = window(padded, geometry, kh, kw)
    rc = te.reduce_axis((0, per_group_in), name="rc")

    def value(b, i, j, g, c):
        channel = g * per_group_in + rc
        channel = channel if source is None else source[channel]
        weight = packed[g * per_group + c // lanes, rh, rw, rc, c % lanes]
        return te.sum(pixel(b, i, j, channel) * weight, axis=[rh, rw, rc])

    return te.compute((*positions, groups, per_group * lanes), value, name=GEMM)


def group_conv2d_nhwc(x, packed, bias, source=None, *, geometry: ConvGeometry, groups: int,
                      channels: int, channels_last=True):  # fmt: skip
    """NHWC (or, not `channels_last`, NCHW) float32 input -> NHWC output of `channels` channels in
    `groups` groups; `bias` [channels] or None; `source` (int32 [C], or None for the identity):
    the input channel that channel c of the conv's input is read from."""
    acc = _grouped_gemm(padded_nhwc(x, geometry, channels_last), packed, geometry, groups, source)
    n, (oh, ow), per_group = int(x.shape[0]), geometry.out_hw, channels // groups

    def value(b, i, j, o):
        at = (b, 0, i * ow + j) if geometry.pointwise() else (b, i, j)
        total = acc[(*at, o // per_group, o % per_group)]
        return total if bias is None else total + bias[o]

    return te.compute((n, oh, ow, channels), value, name=OUTPUT)
