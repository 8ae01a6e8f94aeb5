"""Reductions over outer axes, the innermost axis kept: vectors of it summed position by position.

A channels-last network's global pool is a mean of [N, H, W, C] over H and W. The fallback
parallelizes the kept axes (N, C) and reduces each channel over H x W on its own: every step a
scalar load a whole row of channels away from the last, a cache line per element. SqueezeNet's
mean over 13x13x1000 took 1.5 ms of its 20 (Zen 3, loaded), as long as a 3x3 conv. Here the
innermost kept axis is split into vectors, outside them the reduction loops, outside those the
other kept axes in parallel: each step adds one contiguous vector of C.
"""

from __future__ import annotations

from .schedule_util import (
    CPURule,
    extents,
    inline_epilogue,
    inline_prologue,
    iter_kinds,
    largest_divisor,
    root_blocks,
    vector_lanes,
    vectorized_tail,
)

# independent vector sums per task: one sum is a chain of dependent adds, each waiting out the
# add's latency (3-4 cycles); 8 hide it
CHAINS = 8


class ReduceOuterAxes(CPURule):
    def schedule(self, sch, target) -> bool:
        reductions = [b for b in root_blocks(sch) if sch.get(b).init is not None]
        if len(reductions) != 1 or not _innermost_kept(sch, reductions[0]):
            return False
        reduction = reductions[0]
        spatial = iter_kinds(sch, reduction).count("S")
        loops = sch.get_loops(reduction)
        *outer, kept = loops[:spatial]
        (extent,) = extents(sch, [kept])
        if extent is None:
            return False
        inline_prologue(sch, reduction)  # element-wise producers (x * x of a sum of squares)
        epilogue = inline_epilogue(sch, reduction)
        lanes = vector_lanes(target, int(sch.get(reduction).writes[0].source.dtype.bits))
        lanes = largest_divisor(extent, lanes)
        chains = largest_divisor(extent // lanes, CHAINS)
        kept_o, kept_v, kept_i = sch.split(kept, [None, chains, lanes])
        sch.reorder(*outer, kept_o, *loops[spatial:], kept_v, kept_i)
        sch.unroll(kept_v)
        tasks = sch.fuse(*outer, kept_o) if outer else kept_o
        sch.parallel(tasks)
        if epilogue is not None:
            sch.reverse_compute_at(epilogue, tasks, preserve_unit_loops=True)
        sch.vectorize(kept_i)  # before decomposing: a reduction without its init cannot vectorize
        vectorized_tail(sch, reduction, loops[spatial], [epilogue])
        return True


def _innermost_kept(sch, reduction) -> bool:
    """Spatial iterators first, then reduction ones, and the last spatial one indexes the
    innermost axis of every read and of the write (a sum over a row, as LayerNorm's, does not)."""
    kinds = iter_kinds(sch, reduction)
    spatial = kinds.count("S")
    if spatial in (0, len(kinds)) or kinds != "S" * spatial + "R" * (len(kinds) - spatial):
        return False
    block = sch.get(reduction)
    if len(block.writes) != 1:  # an argmax's value and index
        return False
    kept = block.iter_vars[spatial - 1].var
    regions = [*block.reads, *block.writes]
    return all(r.region[-1].min.same_as(kept) and int(r.region[-1].extent) == 1 for r in regions)
