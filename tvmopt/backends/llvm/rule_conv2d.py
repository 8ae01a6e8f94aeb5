"""Direct NCHW convolution, register-blocked and vectorized (after NeoCPU, ATC 2019).

Each task owns a block of OC_BLOCK output channels of one output row; the accumulators, OC_BLOCK
vectors of `lanes` outputs along the row, stay in registers across the whole reduction over
input channels and the kernel window, and the fused epilogue (bias, activation, residual)
is applied while they are written out. Covers any kernel size, stride, dilation and group count
(depthwise included). The input's zero padding is materialized first, in parallel; with a
row stride s it is stored as s planes of every s-th column, so strided convs load contiguously.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvm import s_tir, tirx

from ..._tvm import tvm
from .schedule_util import (
    CPURule,
    block_named,
    extents,
    inline_epilogue,
    iter_kinds,
    largest_divisor,
    materialize_padding,
    register_accumulator,
    root_blocks,
    split_tile,
    vector_lanes,
    vectorized_tail,
)

CONV_BLOCKS = ("conv2d_nchw", "group_conv2d_nchw")


@dataclass(frozen=True)
class Conv2dTiles:
    """The tile sizes of the schedule: what a tuner searches around."""

    oc_block: int = 8  # output channels per register block
    max_vector: int = 0  # output columns per vector; 0 means the target's lanes
    vectors: int = 1  # vectors of output columns per register block


class Conv2dNCHW(CPURule):
    def __init__(self, tiles: Conv2dTiles = Conv2dTiles(), sample: bool = False):
        self.tiles = tiles
        self.sample = sample

    def schedule(self, sch, target) -> bool:
        conv = block_named(sch, CONV_BLOCKS)
        if conv is None or iter_kinds(sch, conv) != "SSSSRRR":
            return False
        lanes = self.tiles.max_vector or vector_lanes(target)
        materialize_padding(sch, lanes)
        epilogue = inline_epilogue(sch, conv)
        self._schedule_conv(sch, conv, epilogue, lanes)
        return True

    def _schedule_conv(self, sch, conv, epilogue, lanes):
        n, oc, oh, ow, ic, kh, kw = sch.get_loops(conv)
        (ow_extent,) = extents(sch, [ow])
        oc_o, oc_i = split_tile(sch, oc, self.tiles.oc_block, max_inner=16, sample=self.sample)
        ow, ow_i = sch.split(ow, [None, largest_divisor(ow_extent, lanes)])
        ow_o, ow_v = split_tile(sch, ow, self.tiles.vectors, max_inner=4, sample=self.sample)
        sch.reorder(n, oh, oc_o, ow_o, ic, kh, kw, oc_i, ow_v, ow_i)
        sch.vectorize(ow_i)
        sch.unroll(ow_v)
        sch.unroll(oc_i)
        accumulator = register_accumulator(sch, conv)
        sch.reverse_compute_at(accumulator, ow_o, preserve_unit_loops=True)
        if epilogue is not None:
            sch.reverse_compute_at(epilogue, ow_o, preserve_unit_loops=True)
        sch.parallel(sch.fuse(n, oh, oc_o))
        vectorized_tail(sch, conv, ic, [accumulator, epilogue])


def deinterleave_strided_input(func):
    """`func` with its strided conv's padded input deinterleaved (see below), else as it is.
    A pass before scheduling (DeinterleaveStridedInputs), not a schedule step: a tuning record
    cannot hold the index map (TVM 0.27 writes it into the trace's JSON but cannot read it back)."""
    sch = s_tir.Schedule(func)
    try:
        conv = block_named(sch, CONV_BLOCKS)
        if conv is None or not _deinterleave_strided_input(sch, conv):
            return func
    except s_tir.ScheduleError:  # no root block, or not a conv of the shape assumed
        return func
    return sch.mod["main"]


def _deinterleave_strided_input(sch, conv) -> bool:
    """With stride s along the row, the padded input is laid out [..., W % s, W / s]: output
    column j reads column j + kw / s of plane kw % s, so a vector of outputs loads contiguous
    inputs instead of gathering every s-th one (MobileNet's stride-2 depthwise convs)."""
    pads = [b for b in root_blocks(sch) if sch.get(b).name_hint == "pad_temp"]
    if len(pads) != 1:
        return False
    stride, width = _row_stride(sch, conv), extents(sch, sch.get_loops(pads[0])[-1:])[0]
    if stride is None or stride < 2 or width is None or width % stride:
        return False
    sch.transform_layout(
        pads[0], ("write", 0), lambda *index: (*index[:-1], index[-1] % stride, index[-1] // stride)
    )
    return True


def _row_stride(sch, conv) -> int | None:
    """The coefficient of the output column in the conv's read of the padded input."""
    block = sch.get(conv)
    column = block.iter_vars[3].var
    for load in _loads(block.body.value):
        if getattr(load.source, "name", None) == "pad_temp":
            coefficients = tvm.sym.detect_linear_equation(load.indices[-1], [column])
            if len(coefficients) == 2 and isinstance(coefficients[0], tirx.IntImm):
                return int(coefficients[0])
    return None


def _loads(expr):
    """Every buffer load in a TIR expression."""
    if isinstance(expr, tvm.ir.TensorLoad):
        yield expr
    for field in ("a", "b", "value", "condition", "true_value", "false_value"):
        child = getattr(expr, field, None)
        if isinstance(child, tvm.ir.expr.Expr):
            yield from _loads(child)
    for child in getattr(expr, "args", None) or []:
        if isinstance(child, tvm.ir.expr.Expr):
            yield from _loads(child)
