"""Matmul and batch matmul, register-blocked and vectorized along the output's columns.

Each task owns an MR x NR tile of the output (per batch); the accumulators, MR rows of NR/lanes
vectors, stay in registers over the whole reduction: each step broadcasts MR values of A and
loads NR contiguous values of B. The fused epilogue (bias, activation, residual) is applied as
the tile is written out. With one row (batch-1 dense layers), tasks split the columns instead.
Rows and columns that no tile size near MR and NR divides (ViT's 197 tokens, a prime) are padded
to whole tiles; constant weights come padded already (pack_matmul_weights.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from .cpu import cpu_of
from .pack_matmul_weights import padded_rows
from .schedule_util import (
    CPURule,
    block_named,
    extents,
    inline_epilogue,
    iter_kinds,
    register_accumulator,
    split_tile,
    vector_lanes,
    vectorized_tail,
)
from .symbolic_loops import PARTITION_HINT
from .symbolic_matmul import copy_rows, epilogue_apart, inline_or_copy_padding, peel_row_tiles
from .transposed_b import (
    copy_per_tile,
    depth_in_vectors,
    dot_per_column,
    few_rows,
    keep_block,
    stage_transposed,
)
from .transposed_matmul import KERNEL as NT_KERNEL


@dataclass(frozen=True)
class MatmulTiles:
    """The tile sizes of the schedule: what a tuner searches around."""

    rows: int = 0  # MR: rows of A per register block; 0: as many as the target's registers hold
    vectors: int = 2  # NR / lanes: vectors of output columns per register block


def matmul_row_block(cpu, tiles: MatmulTiles = MatmulTiles()) -> int:
    """Rows of A per register block: as many as the accumulators hold beside `tiles.vectors`
    vectors of columns (7 on AVX-512, 6 on AVX2), or the tiles' own."""
    budget = max(cpu.accumulators // tiles.vectors, 1)
    return min(tiles.rows or budget, budget)


class Matmul(CPURule):
    def __init__(self, tiles: MatmulTiles = MatmulTiles(), sample: bool = False):
        self.tiles = tiles
        self.sample = sample

    def schedule(self, sch, target) -> bool:
        matmul = block_named(sch, ("matmul", "T_matmul_NN", "T_batch_matmul_NN", NT_KERNEL))
        if matmul is None or iter_kinds(sch, matmul) not in ("SSR", "SSSR", "SSSSR"):
            return False
        transposed = sch.get(matmul).name_hint == NT_KERNEL
        lanes = vector_lanes(target)
        if transposed and few_rows(sch, matmul) and depth_in_vectors(sch, matmul, lanes):
            # a decoder step: dot products along K's rows
            return dot_per_column(sch, matmul, inline_epilogue(sch, matmul), lanes)
        if transposed:
            stage_transposed(sch, matmul)  # B read as [.., k, j] from a copy, made per tile
        rows, cols = extents(sch, sch.get_loops(matmul)[-3:-1])
        # rows x vectors accumulators must fit in registers (cpu.py): 7 x 2 on AVX-512, 6 x 2 on
        # AVX2; the most rows up to that which divide the extent: 49 rows (7x7) take 7, not 1
        row_block = matmul_row_block(cpu_of(target), self.tiles)
        columns = lanes * self.tiles.vectors
        b_copy = keep_block if transposed else None
        if rows is None or cols is None:
            _pad_symbolic(sch, matmul, row_block if rows is None else 1,
                          columns if cols is None else 1)  # fmt: skip
            copy = b_copy or (copy_rows(sch, lanes) if cols is None else None)
            inline_or_copy_padding(sch, matmul, copy)
        else:
            width = padded_columns(cols, lanes, self.tiles.vectors)
            extra = (padded_rows(rows, row_block) - rows, width - cols)
            copy = partial(_copy_in_parallel, sch, lanes)
            _pad_to_blocks(sch, matmul, *extra, b_copy or copy, copy if transposed else None)
        epilogue = inline_epilogue(sch, matmul)
        *batch, i, j, k = sch.get_loops(matmul)
        i_o, i_i = self._split(sch, i, rows, row_block, max_inner=16)
        j_o, j_i = self._split(sch, j, cols, columns, max_inner=4 * lanes)
        # transposed: each column tile's copy of B serves every row tile, so columns go outside
        rows_peeled = not transposed and peel_row_tiles(sch, batch, j_o, rows, cols)
        tile_loops = (j_o, i_o) if transposed or rows_peeled else (i_o, j_o)
        batch, batch_i = self._panels_per_tile(sch, batch, rows, j_i, transposed, target)
        sch.reorder(*batch, *tile_loops, k, *batch_i, i_i, j_i)
        peeled = transposed and cols is None and bool(batch)
        at_tile = epilogue if cols is not None or peeled else None
        self._vectorize_and_accumulate(sch, matmul, at_tile, tile_loops[1], j_i, i_i)
        if epilogue is not None and at_tile is None:
            epilogue_apart(sch, epilogue, lanes)
        if transposed:
            copy_per_tile(sch, matmul, j_o)
        if peeled:  # symbolic_matmul.py: whole column (and row) tiles, then the last ones
            for tiles in (j_o, i_o) if rows is None else (j_o,):
                sch.annotate(tiles, PARTITION_HINT, 1)
            sch.parallel(sch.fuse(*batch) if len(batch) > 1 else batch[0])
        elif rows_peeled:  # symbolic_matmul.py: whole row tiles, then the last one
            sch.annotate(i_o, PARTITION_HINT, 1)
            sch.parallel(sch.fuse(*batch, j_o))
        else:
            sch.parallel(sch.fuse(*batch, *tile_loops[: 1 if transposed else 2]))
        vectorized_tail(sch, matmul, k, [])
        return True

    def _panels_per_tile(self, sch, batch, rows, j_i, transposed: bool, target):
        """One row (a batch-1 dense layer, its weight in panels: pack_matmul_weights.py) makes
        a register tile of one row by one panel: 2 accumulators, each a chain of K dependent
        FMAs, which on AVX2 ran at 0.7x the speed of the same loop on AVX-512 (whose vectors
        carry twice the weights per FMA; the MLP's GEMVs, profiled on znver4). Several panels
        per tile (the batch axis split, its inner part in the tile) give as many independent
        chains as the accumulators hold, at the cost of fewer tasks: 1024 columns make 16 on
        AVX2 (4 panels of 16), 8 on AVX-512. Returns the batch loops outside the tile, and
        those inside it."""
        if rows != 1 or transposed or not batch:
            return batch, []
        (panels,) = extents(sch, batch[-1:])
        (width,) = extents(sch, [j_i])
        vectors = -(-width // vector_lanes(target))
        per_tile = cpu_of(target).accumulators // vectors
        if panels is None or per_tile < 2:
            return batch, []
        outer, inner = split_tile(sch, batch[-1], per_tile, max_inner=per_tile, sample=self.sample)
        sch.unroll(inner)
        return [*batch[:-1], outer], [inner]

    def _split(self, sch, loop, extent, block: int, max_inner: int):
        if extent is None:  # padded to whole blocks: the split is exact
            return sch.split(loop, [None, block])
        return split_tile(sch, loop, block, max_inner=max_inner, sample=self.sample)

    def _vectorize_and_accumulate(self, sch, matmul, epilogue, j_o, j_i, i_i) -> None:
        sch.vectorize(j_i)
        sch.unroll(i_i)
        accumulator = register_accumulator(sch, matmul)
        sch.reverse_compute_at(accumulator, j_o, preserve_unit_loops=True)
        sch.vectorize(sch.get_loops(accumulator)[-1])
        if epilogue is not None:
            sch.reverse_compute_at(epilogue, j_o, preserve_unit_loops=True)
            sch.vectorize(sch.get_loops(epilogue)[-1])


def padded_columns(cols: int, lanes: int, vectors: int) -> int:
    """`cols`, or the next multiple of `vectors` vectors where `cols` is at least a vector wide
    but no multiple of it: the rule tiles columns by exact divisors, and 197 (ViT's tokens, a
    prime) took one scalar column per tile (Q @ K^T at 1.3 GFLOP/s, Zen 3)."""
    if cols % lanes == 0 or cols < lanes:
        return cols
    width = lanes * vectors
    return -(-cols // width) * width


def _pad_to_blocks(sch, matmul, extra_rows: int, extra_cols: int, copy_b, copy_a) -> None:  # noqa: PLR0913
    """Rows and columns padded by pad_einsum to whole register blocks; the padded outputs are
    never written out. B's padded copy is made once, before the tiles: inlined, its select sat
    in the vector load of the inner loop, which LLVM scalarized (ViT's Q @ K^T, 197 x 197:
    slower than one column per tile). A's too where `copy_a` is given (a transposed B): with
    the row test of A's padding inlined, the loop over K^T's tile spilled 4 accumulators on
    AVX2 (ViT's Q @ K^T, 12 x 197 x 197 x 64, 1 thread: 2.28 -> 1.27 ms CPU time; AVX-512,
    which did not spill, 1.57 -> 1.60). Where B is not transposed (P @ V) nothing spilled:
    A's padding stays inlined, with no copy of A."""
    if extra_rows == 0 and extra_cols == 0:
        return
    loops = sch.get_loops(matmul)
    rows, cols = extents(sch, loops[-3:-1])
    sch.pad_einsum(matmul, [1] * (len(loops) - 3) + [rows + extra_rows, cols + extra_cols, 1])
    inline_or_copy_padding(sch, matmul, copy_b, copy_a)


def _copy_in_parallel(sch, lanes: int, block) -> None:
    *outer, inner = sch.get_loops(block)
    sch.parallel(sch.fuse(*outer) if len(outer) > 1 else outer[0])
    sch.vectorize(sch.split(inner, [None, lanes])[1])


def _pad_symbolic(sch, matmul, row_block: int, columns: int) -> None:
    """Rows (or columns) of a symbolic count (a sequence length) padded to whole register
    blocks: the padded elements of A and B read as zeros (symbolic_matmul.py says where the
    padding is inlined and where copied), and the padded outputs are never written out. Split with a
    predicate instead, the accumulator tile would span every row (its region bounded by the
    count, not the block) and live in a workspace rather than in registers: 4x slower."""
    loops = sch.get_loops(matmul)
    sch.pad_einsum(matmul, [1] * (len(loops) - 3) + [row_block, columns, 1])
