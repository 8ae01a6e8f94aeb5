"""The weight-only matmul as one TIR function: float32 activations, weights in packed blocks
(passes/quantize/weight_blocks.py), dequantized as they are multiplied.

    xsum[m, g]       = sum over the group's rows r of x[m, gB + r]
    partial[m, g, n] = sum over r of x[m, gB + r] * level(gB + r, n) * lift(n)
    y[m, n]          = sum over g of scales[g, n] * (partial[m, g, n] / lift(n)
                                                  - zeros[g, n] * xsum[m, g])

which is sum over k of x[m, k] * (level - zero) * scale, with the zero point and scale applied
once per group instead of once per weight: the inner step is unpack, convert and one FMA. The
unpacking is one instruction: a mask of the level's bits in place (the level times 2^(bits * v)
for vector v of its panel, below), or for the top field of a word a shift; partial sums carry
the power of two, exact, and lose it with the group's zero point and scale.

Levels are packed in panels of P = V x L output columns (L: the target's float32 lanes, cpu.py;
V = 32 / bits: 8 vectors for int4, 4 for int8), [N / P, K, L] uint32: at each k, lane l of a
panel is one 32-bit word holding the levels of columns v * L + l, v = 0 .. V-1, at bits
v * bits. A step over k loads one vector of words, and each of the V vectors of levels is a
shift and a mask of it: no byte shuffle (vpmovzxbd), whose 512-bit form Zen 4 runs at half the
rate of the shift. Columns that do not fill the last panel are zero levels with zero scales,
and the kernel writes whole panels (the caller cuts the result to N).
Block names are what the schedule rule (rule_weight_only.py) looks for.
"""

from __future__ import annotations

import numpy as np
from tvm import te, tirx

XSUM, PARTIAL, MATMUL = "weight_only_xsum", "weight_only_partial", "weight_only_matmul"
WORD_BITS = 32  # levels are packed into words of this many bits, one word per lane


def vectors(bits: int) -> int:
    """Vectors of float32 per panel: the levels one word holds (and independent FMA chains)."""
    return WORD_BITS // bits


def panel_width(lanes: int, bits: int) -> int:
    return vectors(bits) * lanes


def padded_width(columns: int, lanes: int, bits: int) -> int:
    panel = panel_width(lanes, bits)
    return -(-columns // panel) * panel


def pack_levels(levels: np.ndarray, bits: int, lanes: int) -> np.ndarray:
    """[K, N] uint8 levels -> [N / P, K, L] uint32 (the module docstring)."""
    depth, columns = levels.shape
    padded = np.zeros((depth, padded_width(columns, lanes, bits)), np.uint32)
    padded[:, :columns] = levels
    split = padded.reshape(depth, -1, vectors(bits), lanes)  # [K, panels, v, L]
    shifts = (np.arange(vectors(bits), dtype=np.uint32) * bits)[:, None]
    words = np.bitwise_or.reduce(split << shifts, axis=2)  # [K, panels, L]
    return np.ascontiguousarray(words.transpose(1, 0, 2))


def unpack_levels(packed: np.ndarray, bits: int, lanes: int, columns: int) -> np.ndarray:
    """pack_levels undone: the [K, N] uint8 levels."""
    panels, depth, _ = packed.shape
    shifts = (np.arange(vectors(bits), dtype=np.uint32) * bits)[:, None]
    levels = (packed[:, :, None, :] >> shifts) & ((1 << bits) - 1)  # [panels, K, v, L]
    return levels.transpose(1, 0, 2, 3).reshape(depth, -1)[:, :columns].astype(np.uint8)


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

    unlift = _unlift(bits, lanes)

    def output(m, n):
        centred = partial[m, g, n] * unlift(n) - zeros[g, n].astype("float32") * xsum[m, g]
        return te.sum(scales[g, n] * centred, axis=g)

    return te.compute((rows, width), output, name=MATMUL)


def _level_reader(packed, bits: int, lanes: int):
    """(k, n) -> the float32 level of column n at row k (the packed layout), times lift(n)."""
    panel, top = panel_width(lanes, bits), vectors(bits) - 1
    mask = tirx.const((1 << bits) - 1, "uint32")

    def level(k, n):
        word = packed[n // panel, k, n % lanes]
        vector = (n % panel) // lanes
        field = tirx.shift_left(mask, tirx.Cast("uint32", vector * bits))
        # the top field by a shift (its bits include the sign's), the others in place
        value = tirx.Select(vector == top, tirx.shift_right(word, tirx.const(top * bits, "uint32")),
                            tirx.bitwise_and(word, field))  # fmt: skip
        return value.astype("int32").astype("float32")  # small, non-negative: exact

    return level


def _unlift(bits: int, lanes: int):
    """n -> 1 / lift(n): a level read in place is 2^(bits * v) times its value (v < V - 1)."""
    panel, top = panel_width(lanes, bits), vectors(bits) - 1

    def unlift(n):
        vector = (n % panel) // lanes
        lift = tirx.shift_left(tirx.const(1, "int32"), vector * bits).astype("float32")
        return tirx.Select(vector == top, tirx.const(1.0, "float32"), 1.0 / lift)

    return unlift
