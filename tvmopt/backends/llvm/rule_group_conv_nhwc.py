"""The float32 grouped conv channels last (kernel_group_conv_nhwc.py).

Each task takes a tile of output positions; for each group in turn, its panels' register tiles
run the panel GEMM (panel_gemm.py: one broadcast input per position, one weight vector per
panel) over the group's input channels, and are stored to a small buffer of the tile's
positions x the group's (padded) channels; the epilogue (bias, activation, residual) then
writes the group's real channels out, contiguous in the NHWC output. Written per group rather
than per register tile, the epilogue's channels are one run that the schedule can solve for:
a tile of panels would end inside a group whose channels are not a whole number of panels
(ShuffleNet's 34 on AVX2's panels of 8). TVM bounds that run by the group's padded width, so
a group's write-out also writes the first channels of the next group from stale values; the
next group, in the same task, writes them again: the groups' loop must stay sequential inside
a task (the tests check every output channel against torch).
"""

from __future__ import annotations

from .cpu import cpu_of
from .kernel_group_conv_nhwc import GEMM
from .panel_gemm import DEFAULT_TILES, PanelTiles, _positions_as_rows, register_tile
from .schedule_util import (
    CPURule,
    extents,
    padded_anchor,
    register_accumulator,
    split_tile,
    unrolled_write_out,
    vector_split,
    vectorized_tail,
)


class GroupConv2dNHWC(CPURule):
    def __init__(self, tiles: PanelTiles = DEFAULT_TILES, sample: bool = False):
        self.tiles = tiles
        self.sample = sample

    def schedule(self, sch, target) -> bool:
        found = padded_anchor(sch, GEMM, target)
        if found is None or found[1] is None:
            return False
        gemm, epilogue = found
        weight = [r.source for r in sch.get(gemm).reads if len(r.source.shape) == 5]
        lanes = int(weight[0].shape[-1])  # the packed weight's panels [G * P, KH, KW, Ci, L]
        b, i, j, group, channel, *reduction = sch.get_loops(gemm)
        panel, lane = sch.split(channel, [None, lanes])
        positions, panels = extents(sch, [j, panel])
        rows, chunks = register_tile(positions, panels, self.tiles, cpu_of(target).accumulators)
        j_o, j_i = split_tile(sch, j, rows, max_inner=16, sample=self.sample)
        panel_o, panel_i = split_tile(sch, panel, chunks, max_inner=4, sample=self.sample)
        sch.reorder(b, i, j_o, group, panel_o, *reduction, j_i, panel_i, lane)
        tile = register_accumulator(sch, gemm)
        sch.reverse_compute_at(tile, panel_o, preserve_unit_loops=True)
        _positions_as_rows(sch, epilogue)
        sch.reverse_compute_at(epilogue, group, preserve_unit_loops=True)
        sch.parallel(sch.fuse(b, i, j_o))
        unrolled_write_out(sch, tile, lanes)
        sch.unroll(j_i)
        sch.unroll(panel_i)
        sch.vectorize(lane)
        vectorized_tail(sch, gemm, reduction[0], [])
        sch.vectorize(vector_split(sch, sch.get_loops(epilogue)[-1], lanes)[1])
        return True
