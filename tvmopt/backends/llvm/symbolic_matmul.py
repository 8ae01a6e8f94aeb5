"""What the Matmul rule does differently where the columns are a symbolic count (attention's
Q @ K^T: columns are the sequence length), padded to whole register blocks.

B's padded copy is made once, before the tiles: inlined, its select (column < length) sat in
the vector load of the inner loop, which TVM then scalarized. The epilogue (the 1/sqrt(d)
scale, the unpadding) runs as a nest of its own over the padded product: computed at each tile,
it wrote under a predicate on the column, again scalarized, with 64-bit divisions by symbolic
extents recomputed for every element (MiniLM's scores at 128 tokens, Zen 3: 12 ms, 174 us
static). Padded rows need neither: their select is the same for every lane. Where B is read
transposed (NT_matmul: attention's K, whose copy is made per column tile), the epilogue is
computed at the tile after all: the column tiles run serially inside the parallel heads and
LoopPartition peels the last one, so only that tile carries the column predicate.
"""

from __future__ import annotations

from .schedule_util import extents
from .symbolic_loops import MIN_TASKS, parallel_rows_vector_tail


def inline_or_copy_padding(sch, matmul, copy, copy_a=None) -> None:
    """Each padded operand of `matmul` (pad_einsum's producers) inlined, but B's, whose padded
    columns are its innermost index, made by `copy(block)` once before the tiles (when `copy`
    is given: the Matmul rule passes the copy's schedule for symbolic and constant counts), and
    A's, made by `copy_a(block)` where that is given."""
    column = sch.get(matmul).iter_vars[-2].var
    for producer in sch.get_producers(matmul):
        if copy is not None and _indexes_last(sch, matmul, producer, column):
            copy(producer)
        elif copy_a is not None:
            copy_a(producer)
        else:
            sch.compute_inline(producer)


def copy_rows(sch, lanes: int):
    """A padded copy of symbolic extent scheduled as parallel rows over a vector tail."""
    return lambda block: parallel_rows_vector_tail(sch, sch.get_loops(block), lanes)


def _indexes_last(sch, consumer, producer, var) -> bool:
    """Whether `consumer` reads what `producer` writes with `var` as the innermost index."""
    written = sch.get(producer).writes[0].source
    reads = [r for r in sch.get(consumer).reads if r.source.same_as(written)]
    return any(r.region[-1].min.same_as(var) for r in reads)


def epilogue_apart(sch, epilogue, lanes: int) -> None:
    """The epilogue over the whole product after the tiles: parallel rows, unpredicated."""
    parallel_rows_vector_tail(sch, sch.get_loops(epilogue), lanes)


def peel_row_tiles(sch, batch: list, column_tiles, rows, cols) -> bool:
    """Whether the row tiles of a symbolic row count run serially inside parallel (batch,
    column tile) tasks, the last tile peeled by LoopPartition: only that tile keeps the row
    predicate on A's padding (a branch per row and step of k in the hot loop, which also kept
    LLVM from folding the broadcasts into their loads) and on the write-out. Only where the
    constant extents (a symbolic batch adds to them) make tasks enough to fill the threads."""
    if rows is not None or cols is None:
        return False
    tasks = 1
    for size in extents(sch, [*batch, column_tiles]):
        tasks *= size or 1
    return tasks >= MIN_TASKS
