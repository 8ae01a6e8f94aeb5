"""Depthwise convs channels last: the float32 kernel (kernel_depthwise_nhwc.py) here, and the
tiling it shares with the int8 one (rule_int8_depthwise.py).

The padded input is materialized first (the taps read each value up to 9 times), or, where it
is larger than the target's L2, padded by each task for its block of output rows (cache-resident,
no extra pass over the map): EfficientNet-B0 0.93x / 0.93x its time with materialized padding
on AVX-512 / AVX2 (Zen 4, 1 thread, one interleaved run, bench/results/extended/zen4-effnet.md).
Each task takes an output row (or that block of rows); a register tile is a few positions x L
channels of accumulators, the taps unrolled around it, so that each tap's L weights are loaded
once for the tile's positions; the epilogue (bias, activation, residual) is applied as the tile
is written out, channels last. An NCHW output is written by its own loop over the accumulators
instead.
"""

from __future__ import annotations

import math

from .cpu import cpu_of
from .kernel_depthwise_nhwc import TAPS
from .schedule_util import (
    CPURule,
    block_named,
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


# output rows per task where the map outgrows L2: the rows shared with the next task, (kernel -
# stride) of them, are padded twice, a quarter more for a stride-1 3x3; more rows per task would
# leave too few tasks to balance on small output maps
ROWS_PER_PAD = 4


class DepthwiseNHWC(CPURule):
    def schedule(self, sch, target) -> bool:
        per_task = _padded_bytes(sch) > cpu_of(target).l2_bytes
        found = padded_anchor(sch, TAPS, target, materialize=not per_task)
        if found is None:
            return False
        tile_depthwise_taps(sch, *found, False, target, ROWS_PER_PAD if per_task else 0)
        return True


def _padded_bytes(sch) -> int:
    pad = block_named(sch, ("pad_temp",))
    if pad is None:
        return 0
    (write,) = sch.get(pad).writes
    return math.prod(int(d) for d in write.source.shape) * write.source.dtype.bits // 8


def _pad_per_task(sch, task, lanes: int) -> None:
    """A padded map larger than L2 would be written out and read back from beyond it: instead
    each task pads the input rows its block of output rows reads, into a buffer that stays in
    cache (the rows its neighbours read too are padded twice)."""
    pad = block_named(sch, ("pad_temp",))
    if pad is None:
        return
    sch.compute_at(pad, task, preserve_unit_loops=True)
    loops = sch.get_loops(pad)
    _, inner = sch.split(loops[-1], [None, largest_divisor(extents(sch, loops[-1:])[0], lanes)])
    sch.vectorize(inner)


def tile_depthwise_taps(sch, taps, epilogue, channels_first: bool, target, rows_per_pad=0):
    """Tile the taps block [n, oh, ow, c] (reduction kh, kw) in registers, the `epilogue`
    written out per tile (NHWC) or by its own loop (`channels_first`)."""
    n, i, j, c, rh, rw = sch.get_loops(taps)
    cpu, lanes = cpu_of(target), vector_lanes(target)
    (width,) = extents(sch, [j])
    positions = min(POSITIONS, cpu.accumulators)
    j_o, j_i = sch.split(j, [None, largest_divisor(width, positions)])
    c_o, c_i = sch.split(c, [None, lanes])
    sch.reorder(n, i, j_o, c_o, rh, rw, j_i, c_i)
    task = sch.fuse(n, i)
    if rows_per_pad:
        task, _ = sch.split(task, [None, largest_divisor(extents(sch, [task])[0], rows_per_pad)])
    sch.parallel(task)
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
    if rows_per_pad:
        _pad_per_task(sch, task, lanes)


def _write_tile_out(sch, taps, epilogue, tile, lanes: int) -> None:
    """The accumulators stay in registers; the epilogue writes them out per tile."""
    accumulator = register_accumulator(sch, taps)
    sch.reverse_compute_at(accumulator, tile, preserve_unit_loops=True)
    sch.compute_inline(accumulator)
    sch.reverse_compute_at(epilogue, tile, preserve_unit_loops=True)
    unrolled_write_out(sch, epilogue, lanes)
