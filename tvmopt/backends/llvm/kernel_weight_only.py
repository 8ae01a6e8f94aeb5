"""The weight-only matmul as one TIR function: float32 activations, weights in packed blocks
(passes/quantize/weight_blocks.py), dequantized as they are multiplied.

    xsum[m, g]       = sum over the group's rows r of x[m, gB + r]
    partial[m, g, n] = sum over r of x[m, gB + r] * level(gB + r, n)
    y[m, n]          = sum over g of scales[g, n] * (partial[m, g, n] - zeros[g, n] * xsum[m, g])

which is sum over k of x[m, k] * (level - zero) * scale, with the zero point and scale applied
once per group instead of once per weight: the inner step is unpack, convert and one FMA.

Levels are packed in panels of P = VECTORS x L output columns (L: the target's float32 lanes,
cpu.py), [N / P, K, P * bits / 8] uint8: at each k, a panel's int4 levels are L bytes per two
vectors, column v * L + l in byte (v // 2) * L + l, the low nibble for even v; int8 levels are
one byte each. A step over k then loads contiguous bytes, and each vector of levels is a shift
and a mask of them, never a shuffle. Columns that do not fill the last panel are zero levels
with zero scales, and the kernel writes whole panels (the caller cuts the result to N).
Block names are what the schedule rule (rule_weight_only.py) looks for.
"""

from __future__ import annotations

import numpy as np
from tvm import te, tirx

XSUM, PARTIAL, MATMUL = "weight_only_xsum", "weight_only_partial", "weight_only_matmul"
VECTORS = 4  # vectors of float32 per panel: four independent FMA chains per step over k


def panel_width(lanes: int) -> int:
    return VECTORS * lanes


def padded_width(columns: int, lanes: int) -> int:
    panel = panel_width(lanes)
    return -(-columns // panel) * panel


def pack_levels(levels: np.ndarray, bits: int, lanes: int) -> np.ndarray:
    """[K, N] uint8 levels -> [N / P, K, P * bits / 8] uint8 (the module docstring)."""
    depth, columns = levels.shape
    per_byte, panel = 8 // bits, panel_width(lanes)
    padded = np.zeros((depth, padded_width(columns, lanes)), np.uint8)
    padded[:, :columns] = levels
    # column v * L + l of a panel, v = j * per_byte + h: byte j * L + l, bits h * bits
    split = padded.reshape(depth, -1, VECTORS // per_byte, per_byte, lanes).astype(np.uint16)
    shifts = (np.arange(per_byte, dtype=np.uint16) * bits)[:, None]
    packed = (split << shifts).sum(axis=3).astype(np.uint8)  # [K, panels, j, L]
    return np.ascontiguousarray(packed.transpose(1, 0, 2, 3).reshape(-1, depth, panel // per_byte))


def unpack_levels(packed: np.ndarray, bits: int, lanes: int, columns: int) -> np.ndarray:
    """pack_levels undone: the [K, N] uint8 levels."""
    panels, depth, _ = packed.shape
    per_byte = 8 // bits
    shifts = (np.arange(per_byte, dtype=np.uint8) * bits)[:, None]
    split = packed.reshape(panels, depth, VECTORS // per_byte, 1, lanes)
    levels = (split >> shifts) & ((1 << bits) - 1)  # [panels, K, j, h, L]
    return levels.transpose(1, 0, 2, 3, 4).reshape(depth, -1)[:, :columns]


def pad_columns(array: np.ndarray, width: int) -> np.ndarray:
    """Scales or zeros [G, N] with zero columns up to `width`."""
    padded = np.zeros((len(array), width), array.dtype)
    padded[:, : array.shape[1]] = array
    return padded


def weight_only_matmul(x, packed, scales, zeros, *, bits: int, lanes: int):
    """TE: y [M, N / P * P] = x [M, K] times the packed blocks' weight (the module docstring)."""
    rows, depth = x.shape
    groups, width = scales.shape
    group = depth // groups
    level = _level_reader(packed, bits, lanes)
    r = te.reduce_axis((0, group), name="r")
    xsum = te.compute((rows, groups), lambda m, g: te.sum(x[m, g * group + r], axis=r), name=XSUM)
    r = te.reduce_axis((0, group), name="r")
    partial = te.compute(
        (rows, groups, width),
        lambda m, g, n: te.sum(x[m, g * group + r] * level(g * group + r, n), axis=r),
        name=PARTIAL,
    )
    g = te.reduce_axis((0, groups), name="g")

    def output(m, n):
        centred = partial[m, g, n] - zeros[g, n].astype("float32") * xsum[m, g]
        return te.sum(scales[g, n] * centred, axis=g)

    return te.compute((rows, width), output, name=MATMUL)


def _level_reader(packed, bits: int, lanes: int):
    """(k, n) -> the float32 level of column n at row k (the packed layout)."""
    per_byte, panel = 8 // bits, panel_width(lanes)
    mask = tirx.const((1 << bits) - 1, "uint8")

    def level(k, n):
        vector, lane = (n % panel) // lanes, n % lanes
        byte = packed[n // panel, k, (vector // per_byte) * lanes + lane]
        if per_byte > 1:
            shift = tirx.Cast("uint8", (vector % per_byte) * bits)
            byte = tirx.bitwise_and(tirx.shift_right(byte, shift), mask)
        return byte.astype("float32")

    return level
