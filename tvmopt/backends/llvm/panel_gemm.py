"""The register-blocked GEMM over packed weight panels, shared by the channels-last conv kernels.

Both the int8 layer (kernel_int8_gemm.py) and the float32 NHWC conv (kernel_conv_nhwc.py)
compute acc[n, i, j, no, ni] over a packed weight [no, kh, kw, c..., ni]: positions j of row i
(or all positions of a pointwise conv, i = 0) by panels no of L output channels ni (a vector of
the target's: cpu.py). Each task owns `rows` positions x `chunks` panels; their accumulators
stay in registers over the whole reduction, each step broadcasting one input value per position
against one vector per panel, as many as the target's register budget holds (7 x 2 on AVX-512,
6 x 2 on AVX2). The int8 reduction ends in a step of 4 channels (VNNI's vpdpbusd), or 8 in two
parts (vpmaddubsw's depth-8 step); the float32 one does not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tvm import tirx

from .cpu import INT8_STEPS, cpu_of
from .intrin_int8 import register_int8_steps
from .schedule_util import (
    extents,
    largest_divisor,
    register_accumulator,
    split_tile,
    unrolled_write_out,
    vectorized_tail,
)


@dataclass(frozen=True)
class PanelTiles:
    """The tile sizes of the schedule: what a tuner searches around."""

    rows: int = 16  # output positions per register block, at most
    chunks: int = 2  # 16-channel panels per register block, at most


DEFAULT_TILES = PanelTiles()


def schedule_panel_gemm(  # noqa: PLR0913 - the blocks, then how to tile them
    sch,
    gemm,
    epilogue,
    tiles: PanelTiles,
    sample: bool,
    target,
    *,
    intrinsic: str | None = None,
    channels_first=False,
    panels_outer=None,
) -> None:
    """Weight panels outermost keeps one task's panel in cache while positions stream past; with
    `panels_outer` False, each tile of positions meets every panel in turn, so the input and
    output stream once. A weight that fits in the target's L2 loses nothing, and `panels_outer`
    defaults to whether it does not (float 128->512 @28: 89 -> 105 GMAC/s; int8 64->256 @56:
    119 -> 214). An NCHW epilogue writes whole rows of a panel's channels: panels stay outermost
    there."""
    cpu = cpu_of(target)
    if panels_outer is None:
        panels_outer = channels_first or _weight_bytes(sch, gemm) > cpu.l2_bytes
    b, i, j, no, ni, *reduction = sch.get_loops(gemm)
    # the int8 reduction ends in its step's axes (ki, or kp and ki in parts: kernel_int8_gemm.py)
    outer, steps = reduction[:3], reduction[3:]
    positions, panels, lanes = extents(sch, [j, no, ni])
    vectors = max(lanes // cpu.lanes(32), 1)  # per panel: 2 where a panel is two registers wide
    budget = _accumulator_budget(cpu, intrinsic, cpu.accumulators // vectors)
    rows, chunks = register_tile(positions, panels, tiles, budget)
    if not channels_first:
        rows = _rows_within_image_rows(sch, epilogue, positions, lanes, rows)
    j_o, j_i = split_tile(sch, j, rows, max_inner=16, sample=sample)
    no_o, no_i = split_tile(sch, no, chunks, max_inner=4, sample=sample)
    # the L channels are the vector: innermost, unless an int8 step's (L x D) block is
    vector = [ni, *steps] if intrinsic else [*steps, ni]
    tile = [no_o, b, i, j_o] if panels_outer else [b, i, j_o, no_o]
    sch.reorder(*tile, *outer, j_i, no_i, *vector)
    accumulator = register_accumulator(sch, gemm)
    sch.reverse_compute_at(accumulator, tile[-1], preserve_unit_loops=True)
    if channels_first:
        assert panels_outer, "an NCHW epilogue is computed per panel's row"
        # NCHW: the epilogue waits for a whole output row, then writes each channel's row
        # contiguously; written tile by tile, every channel would touch a partial cache line
        sch.reverse_compute_at(epilogue, i, preserve_unit_loops=True)
        sch.parallel(sch.fuse(no_o, b, i))
    else:  # channels last: the tile's accumulators are written out as they are
        sch.compute_inline(accumulator)
        _positions_as_rows(sch, epilogue)
        sch.reverse_compute_at(epilogue, tile[-1], preserve_unit_loops=True)
        tasks = tile if panels_outer else tile[:3]
        sch.parallel(sch.fuse(*tasks))
        unrolled_write_out(sch, epilogue, lanes)
    sch.unroll(j_i)
    sch.unroll(no_i)
    if not intrinsic:  # before decomposing: a reduction block without its init cannot vectorize
        for step in steps:
            sch.unroll(step)
        sch.vectorize(ni)
    vectorized_tail(sch, gemm, outer[0], [])
    if intrinsic:
        register_int8_steps()
        sch.tensorize(ni, intrinsic)


def _accumulator_budget(cpu, intrinsic: str | None, accumulators: int):
    """The accumulators a tile may hold, or a function of its panels (chunks) giving them: a
    step in parts (the depth-8 vpmaddubsw) holds `parts` weight vectors per panel, `parts`
    broadcasts, the ones of its vpmaddwd and two int16 partial sums, which AVX2's 16 registers
    hold only beside fewer accumulators (4 x 2 spilled one; 8 x 1 does not)."""
    step = next((s for s in INT8_STEPS.values() if s.name == intrinsic), None)
    if step is None or step.parts == 1:
        return accumulators
    free = cpu.isa.vector_registers - step.parts - 3
    return lambda chunks: min(accumulators, free - step.parts * chunks)


def register_tile(positions: int, panels: int, tiles: PanelTiles, budget):
    """(rows, chunks): the most accumulators (rows x chunks) within `budget` (a number, or a
    function of chunks: _accumulator_budget) with rows dividing
    `positions` and chunks `panels` (splits stay exact); of equals, the fewest loads per
    multiply-add (rows + chunks per rows x chunks). A 7x7 map's 49 positions take 7 x 1 on
    AVX2 (a budget of 12), where rows of at most 6 beside 2 panels left 1 x 2: ResNet-50's
    stage-4 convs went from 27 to 70 GFLOP/s (profiled on znver4); AVX-512's 7 x 2 stays."""
    candidates = []
    for chunks in range(1, tiles.chunks + 1):
        if panels % chunks == 0:
            most = budget(chunks) if callable(budget) else budget
            rows = largest_divisor(positions, min(tiles.rows, max(most // chunks, 1)))
            candidates.append((rows * chunks, -(rows + chunks) / (rows * chunks), rows, chunks))
    _, _, rows, chunks = max(candidates)
    return rows, chunks


def _weight_bytes(sch, gemm) -> int:
    """The size of the packed weight: the GEMM's operand with the most dimensions (5 of float
    panels, 6 of int8 ones, against the input's 4)."""
    weight = max((r.source for r in sch.get(gemm).reads), key=lambda buffer: len(buffer.shape))
    return math.prod(int(d) for d in weight.shape) * weight.dtype.bits // 8


def _rows_within_image_rows(sch, epilogue, positions: int, lanes: int, rows: int) -> int:
    """`rows`, or the most up to it that divide the image's width, where an NHWC epilogue's
    last vector of channels is partial: its write-out is predicated then, and a tile of
    positions that crosses image rows with it leaves TVM unable to bound the tile's region of
    the accumulators, which it then allocates whole, per task, outside the registers
    (ShuffleNetV2's 116 channels on 28x28, AVX2's 8 x 1 tile: 3x slower, 740 -> 241 us at 7 x 1,
    where 120 channels took 256 us)."""
    dims = [v.dom.extent for v in sch.get(epilogue).iter_vars]
    if len(dims) != 4 or not all(isinstance(d, tirx.IntImm) for d in dims):
        return rows  # not an NHWC map of known size
    height, width, channels = (int(d) for d in dims[1:])
    if channels % lanes == 0 or width % rows == 0 or positions != height * width:
        return rows
    return largest_divisor(width, rows)


def _positions_as_rows(sch, epilogue) -> None:
    """A pointwise conv's GEMM runs over positions p = h * W + w, its NHWC epilogue over (h, w):
    the epilogue's iteration becomes (n, p, c) too, so that it can be computed per tile of
    positions (TVM cannot solve a tile of p for h and w)."""
    block = sch.get(epilogue)
    reads = [r for r in block.reads if len(r.region) == 5]  # the accumulator [N, 1, P, N/16, 16]
    if len(block.iter_vars) != 4 or not reads or int(reads[0].source.shape[1]) != 1:
        return
    width = int(block.iter_vars[2].dom.extent)
    sch.transform_block_layout(epilogue, lambda n, h, w, c: (n, h * width + w, c))
