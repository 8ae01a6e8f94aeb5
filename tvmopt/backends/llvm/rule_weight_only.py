"""The weight-only matmul (kernel_weight_only.py): dequantized as it is multiplied.

Each task owns one panel of P = V x L output columns (L: the target's float32 lanes, cpu.py;
V = 8 for int4, 4 for int8) for one row of x. Per group of the reduction, the panel's partial
sums are V vectors that stay in registers over the group's rows: each step broadcasts x[m, k],
loads the panel's vector of packed words for row k, unpacks each vector with a shift and a
mask, converts and adds one FMA. At the group's end the sums take the group's zero point and
scale into the output panel. The packed weight is read once per row of x, as a decoding step
has: the kernel is a matrix-vector product, memory-bound, and the weights' bytes are what it
saves.
"""

from __future__ import annotations

from .kernel_weight_only import MATMUL, PARTIAL, XSUM
from .schedule_util import (
    CPURule,
    block_named,
    inline_epilogue,
    inline_prologue,
    largest_divisor,
    parallel_rows_vector_inner,
    root_blocks,
    vector_lanes,
)


class WeightOnlyMatmul(CPURule):
    def schedule(self, sch, target) -> bool:
        matmul, partial, xsum = (block_named(sch, (name,)) for name in (MATMUL, PARTIAL, XSUM))
        if matmul is None or partial is None or xsum is None:
            return False
        lanes = vector_lanes(target)
        inline_prologue(sch, _first(sch, (partial, xsum)))  # a reshape of x FuseOps put ahead
        epilogue = inline_epilogue(sch, matmul)
        vectors = _panel_vectors(sch, partial, lanes)
        row, column, group = sch.get_loops(matmul)
        panel, vector, lane = sch.split(column, [None, vectors, lanes])
        sch.reorder(panel, row, group, vector, lane)
        sch.parallel(sch.fuse(panel, row))  # before the reductions are split from their inits
        sch.compute_at(partial, group)
        _vectorize_partial(sch, partial, vectors, lanes)
        _vector_tile(sch, sch.decompose_reduction(_vector_tile(sch, matmul), group))
        _parallel_rows(sch, xsum)
        if epilogue is not None:
            _elementwise(sch, epilogue, lanes)
        return True


def _first(sch, blocks):
    """Of `blocks`, the one that comes first in the function."""
    order = [sch.get(block) for block in root_blocks(sch)]
    return min(blocks, key=lambda block: next(i for i, b in enumerate(order)
                                              if b.same_as(sch.get(block))))  # fmt: skip


def _panel_vectors(sch, partial, lanes: int) -> int:
    """Vectors per panel: the partial sums' columns over the packed words' [panels, K, L]."""
    packed = next(r.source for r in sch.get(partial).reads if len(r.source.shape) == 3)
    columns = int(sch.get(partial).iter_vars[2].dom.extent)
    return columns // (int(packed.shape[0]) * lanes)


def _vectorize_partial(sch, partial, vectors: int, lanes: int) -> None:
    """The partial sums' loops under the group: steps over k outside, the panel's vectors inside
    (unrolled) and their lanes (vectorized); zeroed once per group."""
    *_, columns, step = sch.get_loops(partial)
    vector, lane = sch.split(columns, [vectors, lanes])
    sch.reorder(step, vector, lane)
    _vector_tile(sch, sch.decompose_reduction(_vector_tile(sch, partial), step))


def _vector_tile(sch, block):
    """The block's two innermost loops, a panel's vectors, unrolled and vectorized; the block.
    A reduction's before its init is split off (which copies the loops, plain)."""
    *_, vector_loop, lane_loop = sch.get_loops(block)
    sch.unroll(vector_loop)
    sch.vectorize(lane_loop)
    return block


def _parallel_rows(sch, xsum) -> None:
    row, _, _ = sch.get_loops(xsum)
    sch.parallel(row)


def _elementwise(sch, block, lanes: int) -> None:
    """A fused epilogue written apart (bias, activation): its rows in parallel, vectorized."""
    loops = sch.get_loops(block)
    if len(loops) == 4:  # noqa: PLR2004 - the 4-D case has a helper of its own
        parallel_rows_vector_inner(sch, block, lanes)
        return
    *outer, inner = loops
    if outer:
        sch.parallel(sch.fuse(*outer))
    (extent,) = [int(sch.get(inner).extent)]
    _, vector = sch.split(inner, [None, largest_divisor(extent, lanes)])
    sch.vectorize(vector)
