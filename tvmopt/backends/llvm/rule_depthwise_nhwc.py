"""Depthwise convs channels last: the float32 kernel (kernel_depthwise_nhwc.py) here, and the
tiling it shares with the int8 one (rule_int8_depthwise.py).

The padded input is materialized first (the taps read each value up to 9 times). Then each
task takes an output row; a register tile is a few positions x L channels of accumulators,
the taps unrolled around it, so that each tap's L weights are loaded once for the tile's
positions; the epilogue (bias, activation, residual) is applied as the tile is written out,
channels last. An NCHW output is written by its own loop over the accumulators instead.
"""

from __future__ import annotations

from .cpu import cpu_of
from .kernel_depthwise_nhwc import TAPS
from .schedule_util import (
    CPURule,
    extents,
    largest_divisor,
    padded_anchor,
    parallel_rows_vector_inner,
    register_accumulator,
    unrolled_write_out,
    vector_lanes,
    vectorized_tail,
)

POSITIONS = 8  # output positions per register tile, at most: 8 x L channels


class DepthwiseNHWC(CPURule):
    def schedule(self, sch, target) -> bool:
        found = padded_anchor(sch, TAPS, target)
        if found is None:
            return False
        tile_depthwise_taps(sch, *found, False, target)
        return True


def tile_depthwise_taps(sch, taps, epilogue, channels_first: bool, target) -> None:
    """Tile the taps block [n, oh, ow, c] (reduction kh, kw) in registers, the `epilogue`
    written out per tile (NHWC) or by its own loop (`channels_first`)."""
    n, i, j, c, rh, rw = sch.get_loops(taps)
    cpu, lanes = cpu_of(target), vector_lanes(target)
    (width,) = extents(sch, [j])
    positions = min(POSITIONS, cpu.accumulators)
    j_o, j_i = sch.split(j, [None, largest_divisor(width, positions)])
    c_o, c_i = sch.split(c, [None, lanes])
    sch.reorder(n, i, j_o, c_o, rh, rw, j_i, c_i)
    sch.parallel(sch.fuse(n, i))
    if channels_first:
        # its own loop over the accumulators, in parallel over channel planes
        parallel_rows_vector_inner(sch, epilogue, lanes)
    else:
        _write_tile_out(sch, taps, epilogue, c_o, lanes)
    sch.unroll(rh)
    sch.unroll(rw)
    sch.unroll(j_i)
    sch.vectorize(c_i)
    vectorized_tail(sch, taps, rh, [])


def _write_tile_out(sch, taps, epilogue, tile, lanes: int) -> None:
    """The accumulators stay in registers; the epilogue writes them out per tile."""
    accumulator = register_accumulator(sch, taps)
    sch.reverse_compute_at(accumulator, tile, preserve_unit_loops=True)
    sch.compute_inline(accumulator)
    sch.reverse_compute_at(epilogue, tile, preserve_unit_loops=True)
    unrolled_write_out(sch, epilogue, lanes)
