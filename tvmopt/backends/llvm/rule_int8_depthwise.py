"""The int8 depthwise conv (passes/quantize/depthwise.py): quantize, taps, dequantize.

The padded uint8 input is materialized first (the taps read each value up to 9 times). Then
each task takes an output row; a register tile is a few positions x 16 channels of int32
accumulators, the taps unrolled around it, so that each tap's 16 weights are loaded once for
the tile's positions; the tile is dequantized, with the layer's activation and requantization
(FuseOps' epilogue), as it is written out, channels last. An NCHW output (next to a float
layer) is written by its own loop over the accumulators instead.
"""

from __future__ import annotations

from ...passes.quantize.depthwise import DEPTHWISE
from ...passes.quantize.kernels import LANES
from .rule_int8_gemm import int8_layer
from .schedule_util import (
    CPURule,
    extents,
    largest_divisor,
    parallel_rows_vector_inner,
    unrolled_write_out,
    vector_lanes,
    vectorized_tail,
)

POSITIONS = 8  # output positions per register tile: 8 x 16 channels of int32


class Int8Depthwise(CPURule):
    def schedule(self, sch, target) -> bool:
        layer = int8_layer(sch, DEPTHWISE, target)
        if layer is None:
            return False
        taps, epilogue, channels_first = layer
        n, i, j, c, rh, rw = sch.get_loops(taps)
        (width,) = extents(sch, [j])
        j_o, j_i = sch.split(j, [None, largest_divisor(width, POSITIONS)])
        c_o, c_i = sch.split(c, [None, LANES])
        sch.reorder(n, i, j_o, c_o, rh, rw, j_i, c_i)
        sch.parallel(sch.fuse(n, i))
        if channels_first:
            # its own loop over the accumulators, in parallel over channel planes
            parallel_rows_vector_inner(sch, epilogue, vector_lanes(target))
        else:
            _write_tile_out(sch, taps, epilogue, c_o)
        sch.unroll(rh)
        sch.unroll(rw)
        sch.unroll(j_i)
        sch.vectorize(c_i)
        vectorized_tail(sch, taps, rh, [])
        return True


def _write_tile_out(sch, taps, epilogue, tile) -> None:
    """The accumulators stay in registers; the epilogue writes them out per tile."""
    accumulator = sch.cache_write(taps, 0, "local")
    sch.reverse_compute_at(accumulator, tile, preserve_unit_loops=True)
    sch.compute_inline(accumulator)
    sch.reverse_compute_at(epilogue, tile, preserve_unit_loops=True)
    unrolled_write_out(sch, epilogue, LANES)
