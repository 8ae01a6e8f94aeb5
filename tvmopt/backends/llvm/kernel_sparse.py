"""float32 matmuls with a sparse constant weight, as scheduled TIR (TVM 0.27 has no sparse ops):

    y[M, N] = x[M, K] @ W[K, N] + bias[N]    (zeros where the layer has no bias)

Every kernel first copies x transposed (xt[K, M]), so that the rows of x one weight element meets
are contiguous, then keep a register tile of accumulators over the weight's stored elements:

    bsr_matmul  W in blocks of 1 x B along N (B = 4, 8, 16): a row k of block column j is stored
                when any of its B values is not zero. A task owns block column j and R rows of
                x; each stored block is one vector load, and each of the R rows broadcasts
                xt[k, m] against it (the dense matmul's step, over the stored rows only).
                For blocks narrower than a vector (1x8 on AVX-512) that step fills half of
                each vector: bsr_token_matmul vectorizes over the rows of x instead.
    bsr_token_matmul  the same blocks; a task owns V vectors of rows of x and a group of block
                columns; each stored block is V vector loads of xt[k, :] and B broadcasts of
                its values, B x V whole-vector FMAs. Each block column's B x V accumulators go
                to a small buffer, transposed into y once the group (one vector of columns)
                is done, while it is still in L1.
    csr_matmul  W unstructured, column by column (CSC): bsr_token_matmul on 1 x 1 blocks, each
                stored value broadcast against V vectors of xt[k, :].

R and V come from the target's register budget (cpu.py), the vector width from its lanes. The
weights are packed in numpy (pack_bsr, pack_csr) and become constants of the module; the
kernels are scheduled by hand (tirx.is_scheduled), so the CPU rules leave them alone.
"""

from __future__ import annotations

import numpy as np
from tvm.script import tirx as T

from ..kernel_record import RULE_KEY
from .schedule_util import largest_divisor

# CSR's rows per register tile: at 90% sparsity, 128 tokens, one thread, 32 rows ran fastest on
# every BERT-base layer on AVX2 (V 4 of 1-8; 768 -> 3072: 3.1 ms against 3.4 for 64 rows) and on
# the two large ones on AVX-512 (V 2: 2.7 ms against 3.0 for 128 rows; 768 -> 768: 0.55 / 0.53);
# measured on the CSR kernel before bsr_token_matmul, whose V 2 and V 4 ran alike (under load)
TILE_ROWS = 32


def pack_bsr(weight: np.ndarray, width: int):
    """(data [blocks, width], indices [blocks], indptr [N / width + 1]) of W [K, N] in blocks of
    1 x width: block column j's stored rows k are indices[indptr[j]:indptr[j + 1]]."""
    k, n = weight.shape
    blocks = weight.reshape(k, n // width, width).transpose(1, 0, 2)  # [N / width, K, width]
    stored = np.any(blocks != 0, axis=2)
    rows = np.nonzero(stored)  # (block column, row), block column major
    indptr = np.concatenate([[0], np.cumsum(stored.sum(axis=1))])
    data, indices = blocks[rows], rows[1]
    if not len(indices):  # an all-zero weight: one block no column reads, as buffers are not empty
        data, indices = np.zeros((1, width)), np.zeros(1)
    return data.astype("float32"), indices.astype("int32"), indptr.astype("int32")


def pack_csr(weight: np.ndarray):
    """(data [stored, 1], indices, indptr) of W [K, N] column by column (CSC): column n's values
    are data[indptr[n]:indptr[n + 1]], at rows indices[...]: BSR's layout, blocks of 1 x 1."""
    return pack_bsr(weight, 1)


def bsr_matmul(m: int, k: int, n: int, width: int, stored: int, rows: int):
    """The 1 x `width` block kernel, `rows` (R) rows of x per register tile (R divides m)."""
    columns, tiles = n // width, m // rows

    @T.prim_func(private=True, s_tir=True)
    def kernel(
        x: T.Buffer((m, k), "float32"),
        data: T.Buffer((stored, width), "float32"),
        indices: T.Buffer((stored,), "int32"),
        indptr: T.Buffer((columns + 1,), "int32"),
        bias: T.Buffer((n,), "float32"),
        y: T.Buffer((m, n), "float32"),
    ):
        T.func_attr({"tirx.is_scheduled": True, "tirx.noalias": True})
        with T.sblock("root"):
            T.sblock_attr({RULE_KEY: "SparseBSR"})
            xt = T.alloc_buffer((tiles, k, rows), "float32")
            _panels(x, xt, k, tiles, rows, _chunk(k))
            for task in T.parallel(tiles * columns):
                acc = T.decl_buffer((rows * width,), "float32")
                t = task // columns
                j = task % columns
                for r in T.unroll(rows):
                    for v in T.vectorized(width):
                        acc[r * width + v] = bias[j * width + v]
                for p in T.serial(indptr[j + 1] - indptr[j]):
                    for r in T.unroll(rows):
                        for v in T.vectorized(width):
                            acc[r * width + v] = (
                                acc[r * width + v]
                                + xt[t, indices[indptr[j] + p], r] * data[indptr[j] + p, v]
                            )
                for r in T.unroll(rows):
                    for v in T.vectorized(width):
                        y[t * rows + r, j * width + v] = acc[r * width + v]

    return kernel


def csr_matmul(m: int, k: int, n: int, stored: int, lanes: int, vectors: int):
    """The unstructured kernel: bsr_token_matmul on blocks of 1 x 1, `vectors` (V) vectors of
    `lanes` rows of x per register tile (V x lanes divides m: the Relax pass pads x's rows to
    whole vectors; a predicate on the tile's rows would scalarize the accumulators). A vector
    of columns at a time goes from L1 into y: through a whole yt [N, M] in memory (the kernel
    before), 768 -> 3072 ran 4.2-6.7 ms against 1.3-1.5 under load, Zen 4, one thread."""
    tiling = (lanes, vectors, largest_divisor(n, lanes))
    return bsr_token_matmul(m, k, n, 1, stored, tiling, rule="SparseCSR")


def bsr_token_matmul(  # noqa: PLR0913 - the shape, the weight's blocks, the tiling
    m: int, k: int, n: int, width: int, stored: int, tiling: tuple, rule: str = "SparseBSR"
):
    """The 1 x `width` block kernel vectorized over the rows of x; `tiling` is (lanes, V, G):
    V vectors of `lanes` rows of x per register tile (V x lanes divides m), G block columns
    (G x width divides n) per transpose into y; `rule` names it in the kernel record."""
    lanes, vectors, group = tiling
    tile, span = lanes * vectors, group * width
    tiles, groups = m // tile, n // span

    @T.prim_func(private=True, s_tir=True)
    def kernel(
        x: T.Buffer((m, k), "float32"),
        data: T.Buffer((stored, width), "float32"),
        indices: T.Buffer((stored,), "int32"),
        indptr: T.Buffer((n // width + 1,), "int32"),
        bias: T.Buffer((n,), "float32"),
        y: T.Buffer((m, n), "float32"),
    ):
        T.func_attr({"tirx.is_scheduled": True, "tirx.noalias": True})
        with T.sblock("root"):
            T.sblock_attr({RULE_KEY: rule})
            xt = T.alloc_buffer((tiles, k, tile), "float32")
            _panels(x, xt, k, tiles, tile, _chunk(k))
            for task in T.parallel(tiles * groups):
                yt = T.decl_buffer((span * tile,), "float32")  # [span, tile]: in L1
                t = task // groups
                for g in T.serial(group):
                    acc = T.decl_buffer((width * tile,), "float32")
                    j = task % groups * group + g
                    for c in T.unroll(width):
                        for v in T.vectorized(tile):
                            acc[c * tile + v] = bias[j * width + c]
                    for p in T.serial(indptr[j + 1] - indptr[j]):
                        for c in T.unroll(width):
                            for v in T.vectorized(tile):
                                acc[c * tile + v] = (
                                    acc[c * tile + v]
                                    + xt[t, indices[indptr[j] + p], v] * data[indptr[j] + p, c]
                                )
                    for c in T.unroll(width):
                        for v in T.vectorized(tile):
                            yt[(g * width + c) * tile + v] = acc[c * tile + v]
                for r in T.serial(tile):
                    for c in T.vectorized(span):
                        y[t * tile + r, task % groups * span + c] = yt[c * tile + r]

    return kernel


def token_tiling(m: int, n: int, width: int, lanes: int, registers: int):
    """(lanes, V, G) of bsr_token_matmul, or None where one vector of rows per block column
    does not fit the registers: V the most vectors of rows (dividing m / lanes) whose
    B x V accumulators leave a register for each loaded vector of xt and one for the
    broadcast; G block columns span a vector of y's columns (dividing N / B)."""
    vectors = (registers - 1) // (width + 1)
    if vectors < 1 or m % lanes:
        return None
    group = largest_divisor(n // width, max(lanes // width, 1))
    return lanes, largest_divisor(m // lanes, vectors), group


def _chunk(k: int) -> int:
    """Columns of x each step of _panels reads as one vector: a 64-byte cache line of float32
    where they divide K."""
    return largest_divisor(k, 16)


@T.macro(hygienic=False)
def _panels(x, xt, k, tiles, tile, chunk):
    """xt[t, k, r] = x[t * tile + r, k]: each tile of rows of x transposed into a contiguous
    panel, reading x's rows a cache line (`chunk` columns) at a time. Reading one column of a
    tile of rows at a time ran 0.6 ms for 128 x 3072 on Zen 4 (now 0.15): its rows 12 KiB
    apart map to one L1 set."""
    for tk in T.parallel(tiles * (k // chunk)):
        for r in T.serial(tile):
            for c in T.vectorized(chunk):
                xt[tk // (k // chunk), tk % (k // chunk) * chunk + c, r] = x[
                    tk // (k // chunk) * tile + r, tk % (k // chunk) * chunk + c
                ]


def tile_rows(m: int, budget: int, vectors_per_row: int) -> int:
    """R of bsr_matmul: the most rows of x, dividing m, whose accumulators fit the budget."""
    return largest_divisor(m, max(budget // vectors_per_row, 1))


def tile_vectors(m: int, k: int, lanes: int, budget: int, l2_bytes: int) -> int:
    """V of csr_matmul (m whole vectors): vectors of rows per tile, dividing m, within the
    register budget, about TILE_ROWS rows, and few enough that a panel of xt (K x V vectors)
    takes at most half the L2: every stored value reads a random row of it."""
    fits = l2_bytes // 2 // (k * lanes * 4)
    return largest_divisor(m // lanes, max(min(budget, fits, TILE_ROWS // lanes), 1))
