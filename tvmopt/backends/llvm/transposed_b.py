"""The Matmul rule's B where the kernel reads it transposed (NT_matmul: attention's K^T, folded
in by transposed_matmul.py): a copy per column tile, laid out [.., k, j].

K is stored [.., j, k] (k, the head dim, contiguous), while the register tiles load NR
contiguous columns of B per k. So the rule first stages B through a copy whose layout is the
transpose undone ([.., k, j], as every other matmul's B): padding and tiling then go as for those.
The copy is then computed at each column tile: a tile's 32 x head-dim block of K, transposed
into a small buffer that stays in L1, which every row tile reads. K goes through memory once,
where the separate transpose kernel read it and wrote it back before the matmul read it again.
"""

from __future__ import annotations

from tvm import tirx
from tvm_ffi import structural_equal

FEW_ROWS = 4  # static row counts below this take dot_per_column


def stage_transposed(sch, matmul) -> None:
    """B (the matmul's second read) through a copy in [.., k, j] order: the rule's usual B."""
    block = sch.get(matmul)
    region = [index.min for index in block.reads[1].region]
    *batch, _, j, k = (iter_var.var for iter_var in block.iter_vars)
    order = [_position(region, var) for var in (*batch, k, j)]
    copy = sch.cache_read(matmul, 1, "global")
    sch.transform_layout(copy, ("write", 0), lambda *index: tuple(index[p] for p in order))


def _position(region, var) -> int:
    return next(p for p, index in enumerate(region) if index.same_as(var))


def keep_block(block) -> None:
    """Padding's copy of B is left where it is: copy_per_tile places it."""


def copy_per_tile(sch, matmul, column_tile) -> None:
    """B's copy (with its padding, where the columns were padded) computed at each column tile,
    walking K's rows: the reads contiguous, the padding's test once per row."""
    stage = _writer_of_b(sch, matmul)
    for producer in sch.get_producers(stage):
        if sch.get(producer).name_hint.endswith("_global"):
            sch.compute_inline(producer)  # the staging copy, into padding's copy of it
    sch.compute_at(stage, column_tile, preserve_unit_loops=True)
    *_, depth, column = sch.get_loops(stage)
    sch.reorder(column, depth)


def _writer_of_b(sch, matmul):
    b = sch.get(matmul).reads[1].source
    return next(p for p in sch.get_producers(matmul) if sch.get(p).writes[0].source.same_as(b))


def few_rows(sch, matmul) -> bool:
    """A decoder step's scores: a row count (new tokens) that is small, or symbolic and not the
    column count (the cache's length). An encoder's Q K^T (rows = columns = the sequence) is
    not: there the tiles' reuse of each copied K row over many rows wins."""
    *_, rows, cols, _ = (loop for loop in sch.get_loops(matmul))
    rows, cols = sch.get(rows).extent, sch.get(cols).extent
    if isinstance(rows, tirx.IntImm):
        return int(rows) < FEW_ROWS
    return not structural_equal(rows, cols)


def depth_in_vectors(sch, matmul, lanes: int) -> bool:
    """Whether the reduction (the head dim) is a constant multiple of `lanes`."""
    depth = sch.get(sch.get_loops(matmul)[-1]).extent
    return isinstance(depth, tirx.IntImm) and int(depth) % lanes == 0


def dot_per_column(sch, matmul, epilogue, lanes: int) -> bool:
    """Each output a dot product along K's contiguous rows: `lanes` partial sums in a vector
    (rfactor), then added up, the epilogue applied per output. No copy of K and no padding:
    with one row there is no reuse for a register tile to exploit (depth_in_vectors holds)."""
    *batch, i, j, k = sch.get_loops(matmul)
    _, k_i = sch.split(k, [None, lanes])
    partial = sch.rfactor(k_i, factor_axis=len(batch) + 2)
    sch.compute_at(partial, sch.get_loops(matmul)[-2], preserve_unit_loops=True)
    nest = sch.get_loops(partial)[-(len(batch) + 4) :]  # its vars: k_i, batch, i, j, k_o
    k_i, k_o = nest[0], nest[-1]
    sch.reorder(k_o, k_i)
    sch.vectorize(k_i)
    if epilogue is not None:
        sch.reverse_compute_at(epilogue, sch.get_loops(matmul)[-2], preserve_unit_loops=True)
    sch.parallel(sch.fuse(*sch.get_loops(matmul)[: len(batch) + 1]))
    sch.decompose_reduction(partial, k_o)  # after parallel, which wants whole reductions
    return True
