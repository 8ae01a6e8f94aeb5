"""int8 matmuls with a sparse weight, as scheduled TIR: the int8 layer (kernel_int8_gemm.py's
quantize, GEMM, dequantize) with the GEMM over the weight's stored blocks only.

    y[M, N] = float(sum_k xq[m, k] * Wq[k, N] + correction[N]) * scale[N]

Wq is the layer's int8 weight [K, N]; xq the uint8 activation (quantized here from float32, or
read as the producer's requantized uint8). The kernel is bsr_token_matmul's (kernel_sparse.py)
in int8: vectorized over the rows (tokens) of x, whose D consecutive k of one row form a 32-bit
lane (xq packed [tiles, K/D, tile] int32); the weight is stored in blocks of D rows along K (one
32-bit word per column) by B columns along N, a block stored when any of its D x B values is
not zero. Each stored block is V vector loads of xq and B broadcast words, B x V int8 steps
into 16 (AVX-512) or 8 (AVX2) rows of int32 accumulators. A block column's sums are dequantized
into a small float buffer, transposed into y once a vector of columns is done. The step is one
of cpu.py's INT8_STEPS (intrin_int8.py builds it), of depth D:

    vpdpbusd    D 4: 4 uint8 x 4 int8 per lane (AVX-512 VNNI, AVX-VNNI)
    vpmaddubsw  D 4: uint8 x int8 pairs summed in int16, then into int32 by vpmaddwd: only for
                weights whose pairs fit (cpu.int8_pairs_fit: 7-bit weights), as the dense GEMM
    vpmaddwd    D 2: int16 x int16 pairs (x's uint8 widened), exact for any int8 weight

The sums are the dense int8 kernel's exactly (the same products, the zeros left out, no step
that could saturate), so the outputs are bit-identical to it.
"""

from __future__ import annotations

import numpy as np
from tvm.script import tirx as T

from ..kernel_record import RULE_KEY
from .intrin_int8 import _operand, _step
from .schedule_util import largest_divisor

QUAD = 4  # k per 32-bit lane of vpdpbusd and vpmaddubsw (vpmaddwd: 2)
BLOCK_WIDTHS = (16, 8, 4, 1)  # B of the D x B blocks; 1: one column's words (unstructured)


def unpack_dense(packed: np.ndarray, depth: int, columns: int) -> np.ndarray:
    """Wq [K, N] (int8) of a matmul's weight as the dense int8 GEMM packs it
    (kernel_int8_gemm.pack_weight): [N/L, 1, 1, K/D, L, D], or [N/L, 1, 1, K/D, parts, L, D/parts]
    for the depth-8 step, of int8 or int16 (vpmaddwd's widened weights)."""
    blocks, steps = packed.shape[0], packed.shape[3]
    if packed.ndim == 6:  # [N/L, 1, 1, K/D, L, D] -> [K/D, D, N/L, L]
        weight = packed.reshape(blocks, steps, *packed.shape[4:]).transpose(1, 3, 0, 2)
    else:  # [N/L, 1, 1, K/D, parts, L, part] -> [K/D, parts, part, N/L, L]
        weight = packed.reshape(blocks, steps, *packed.shape[4:]).transpose(1, 2, 4, 0, 3)
    lanes = packed.shape[-2]
    return weight.reshape(-1, blocks * lanes)[:depth, :columns].astype(np.int8)


def word_blocks(weight: np.ndarray, width: int, depth: int = QUAD) -> np.ndarray:
    """[N / width, K / D, width, D] of Wq [K, N]: the D x width blocks, K zero-padded."""
    k, n = weight.shape
    padded = np.zeros((-(-k // depth) * depth, n), weight.dtype)
    padded[:k] = weight
    words = padded.reshape(-1, depth, n // width, width)
    return words.transpose(2, 0, 3, 1)


def pack_words(weight: np.ndarray, width: int, depth: int = QUAD):
    """(data [blocks, width] int32, indices [blocks], indptr [N / width + 1]) of Wq [K, N] in
    blocks of D x width: block column j's stored words q (rows Dq..Dq+D-1) are
    indices[indptr[j]:indptr[j + 1]]; each int32 holds one column's D values (int8 for D 4,
    int16 for D 2), k ascending from the low bits (the steps pair element i of both operands)."""
    blocks = word_blocks(weight, width, depth)
    stored = np.any(blocks != 0, axis=(2, 3))
    rows = np.nonzero(stored)  # (block column, word), block column major
    indptr = np.concatenate([[0], np.cumsum(stored.sum(axis=1))])
    dtype = np.int8 if depth == QUAD else np.int16
    data, indices = np.ascontiguousarray(blocks[rows]).astype(dtype), rows[1]
    if not len(indices):  # an all-zero weight: one block no column reads
        data, indices = np.zeros((1, width, depth), dtype), np.zeros(1)
    words = data.view("<i4").reshape(len(indices), width)
    return words.astype("int32"), indices.astype("int32"), indptr.astype("int32")


def stored_fraction(weight: np.ndarray, width: int, depth: int = QUAD) -> float:
    """The share of Wq's D x width blocks with a nonzero: the kernel's work against dense."""
    return float(np.any(word_blocks(weight, width, depth) != 0, axis=(2, 3)).mean())


def token_tiling(m: int, n: int, width: int, lanes: int, registers: int):
    """(lanes, V, G): V vectors of `lanes` rows per register tile, whose width x V accumulators
    leave a register for each loaded vector of xq (`registers`: those the step leaves, see
    free_registers), G block columns per transpose into y (a vector of y's columns); None
    where one vector per block column does not fit or m is not whole vectors."""
    vectors = registers // (width + 1)
    if vectors < 1 or m % lanes:
        return None
    group = largest_divisor(n // width, max(lanes // width, 1))
    return lanes, largest_divisor(m // lanes, vectors), group


def free_registers(step, registers: int) -> int:
    """The vector registers a step leaves for accumulators and xq: vpdpbusd takes its weight
    word as a memory broadcast; vpmaddubsw and vpmaddwd also hold the broadcast word, their
    products and vpmaddwd's ones."""
    return registers if step.accumulates else registers - 3


def sparse_int8_matmul(  # noqa: PLR0913 - the shape, the weight's blocks, the layer's facts
    m: int, k: int, n: int, width: int, stored: int, tiling: tuple, step, quantize: tuple
):
    """The kernel for x [m, k] (float32, or uint8 quantized already: `quantize` is
    (x dtype, inv_scale, zero_point)) times Wq in `stored` D x `width` blocks, on the int8
    `step` (cpu.py's Int8Step of depth D, one part), with token_tiling's `tiling`."""
    lanes, vectors, group = tiling
    depth, bits = step.depth, 32 // step.depth  # D values of `bits` in each word
    tile, span, quads = lanes * vectors, group * width, -(-k // depth)
    tiles, groups = m // tile, n // span
    x_dtype, inv_scale, zero_point = quantize
    vector, operand = f"int32x{lanes}", _operand(step)

    def dot(acc, x, word):  # acc += per lane, x's D values times the word's
        w = T.reinterpret(T.broadcast(word, lanes), dtype=operand)
        return _step(step, acc, T.reinterpret(x, dtype=operand), w)

    def quantized(value):  # kernel_int8_gemm._quantize's rounding, to the same bits
        if x_dtype == "uint8":
            return value
        q = T.round(value * T.float32(inv_scale)) + T.float32(zero_point)
        return T.Cast("uint8", T.max(T.min(q, T.float32(255)), T.float32(0)))

    def byte(x, row, column):  # x[row, column] as uint8, the zero point past K
        inside = quantized(x[row, T.min(column, k - 1)])
        return T.Cast("int32", T.if_then_else(column < k, inside, T.uint8(zero_point)))

    def word(x, row, column):  # x[row, column:column + D] as one int32, the first k lowest
        value = byte(x, row, column)
        for i in range(1, depth):
            value = value | T.shift_left(byte(x, row, column + i), bits * i)
        return value

    # quads of a row each step of the packing reads (64 k: 4 cache lines of float32); each
    # becomes a 32-bit store, and the rounding vectorizes (byte by byte it took 0.8 ms of 1.2
    # for 128 x 768 -> 768 at 90%, Zen 4)
    chunk = largest_divisor(quads, 16)

    @T.prim_func(private=True, s_tir=True)
    def kernel(
        x: T.Buffer((m, k), x_dtype),
        data: T.Buffer((stored, width), "int32"),
        indices: T.Buffer((stored,), "int32"),
        indptr: T.Buffer((n // width + 1,), "int32"),
        correction: T.Buffer((n,), "int32"),
        scale: T.Buffer((n,), "float32"),
        y: T.Buffer((m, n), "float32"),
    ):
        T.func_attr({"tirx.is_scheduled": True, "tirx.noalias": True})
        with T.sblock("root"):
            T.sblock_attr({RULE_KEY: "SparseInt8"})
            xq = T.alloc_buffer((tiles, quads, tile), "int32")  # a word: one row's D k
            for tc in T.parallel(tiles * (quads // chunk)):
                for r in T.serial(tile):
                    for c in T.vectorized(chunk):
                        xq[tc // (quads // chunk), tc % (quads // chunk) * chunk + c, r] = word(
                            x, tc // (quads // chunk) * tile + r,
                            (tc % (quads // chunk) * chunk + c) * depth)  # fmt: skip
            for task in T.parallel(tiles * groups):
                yt = T.decl_buffer((span * tile,), "float32")  # [span, tile]: in L1
                t = task // groups
                for g in T.serial(group):
                    acc = T.decl_buffer((width * tile,), "int32")
                    j = task % groups * group + g
                    for a in T.unroll(width * vectors):
                        acc[T.ramp(a * lanes, 1, lanes)] = T.broadcast(T.int32(0), lanes)
                    for p in T.serial(indptr[j + 1] - indptr[j]):
                        for c in T.unroll(width):
                            for v in T.unroll(vectors):
                                acc[T.ramp((c * vectors + v) * lanes, 1, lanes)] = dot(
                                    acc.vload([(c * vectors + v) * lanes], vector),
                                    xq.vload([t, indices[indptr[j] + p], v * lanes], vector),
                                    data[indptr[j] + p, c],
                                )  # fmt: skip
                    for c in T.unroll(width):
                        for v in T.vectorized(tile):
                            yt[(g * width + c) * tile + v] = T.Cast(
                                "float32", acc[c * tile + v] + correction[j * width + c]
                            ) * scale[j * width + c]
                for r in T.serial(tile):
                    for c in T.vectorized(span):
                        y[t * tile + r, task % groups * span + c] = yt[c * tile + r]

    return kernel
