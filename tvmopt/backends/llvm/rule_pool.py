"""Channels-last 2-D pooling: every window reduction vectorized over the channels.

A pool in NHWC (the int8 path's stem max pool, passes/sink_permutes.py) reduces each output
position's window; with the channels innermost and the window loops outside them, each window
step is one vector max over contiguous channels. TVM's generic fallback parallelizes the
positions and leaves the window innermost, scalar. The padded input is materialized first (in
parallel, vectorized): an inlined pad would put a bounds check under the vector loop.
"""

from __future__ import annotations

from .schedule_util import (
    CPURule,
    block_named,
    extents,
    inline_epilogue,
    iter_kinds,
    largest_divisor,
    materialize_padding,
    vector_lanes,
    vectorized_tail,
)

POOL_BLOCKS = ("pool_max",)


class Pool2dNHWC(CPURule):
    def schedule(self, sch, target) -> bool:
        pool = block_named(sch, POOL_BLOCKS)
        if pool is None or iter_kinds(sch, pool) != "SSSSRR" or not _channels_last(sch, pool):
            return False
        lanes = vector_lanes(target, _element_bits(sch, pool))
        materialize_padding(sch, lanes)
        epilogue = inline_epilogue(sch, pool)
        n, h, w, c, rh, rw = sch.get_loops(pool)
        (channels,) = extents(sch, [c])
        c_o, c_i = sch.split(c, [None, largest_divisor(channels, lanes)])
        sch.reorder(n, h, w, c_o, rh, rw, c_i)
        if epilogue is not None:
            sch.reverse_compute_at(epilogue, w, preserve_unit_loops=True)
            epilogue_c = sch.get_loops(epilogue)[-1]
            sch.split(epilogue_c, [None, largest_divisor(channels, lanes)])
        sch.parallel(sch.fuse(n, h))
        sch.vectorize(c_i)  # before decomposing: a reduction without its init cannot vectorize
        vectorized_tail(sch, pool, rh, [epilogue])
        return True


def _channels_last(sch, pool) -> bool:
    """The window reads the input at [..., c] with c the block's last spatial variable."""
    block = sch.get(pool)
    channel = block.iter_vars[3].var
    return all(region.region[-1].min.same_as(channel) for region in block.reads)


def _element_bits(sch, pool) -> int:
    return int(sch.get(pool).writes[0].source.dtype.bits)
