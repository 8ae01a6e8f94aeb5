"""The int8 layer (passes/quantize/kernels.py): quantize, GEMM with VNNI, dequantize.

Each task owns ROWS output positions of one row x CHUNKS 16-channel blocks of the int32
accumulator; over the reduction,
each step is one vpdpbusd per (row, block): 4 uint8 of the row broadcast against a packed 16x4
int8 weight block. The accumulators stay in registers; the dequantizing epilogue is applied as
the tile is written out. On CPUs without VNNI (AVX2, NEON, or a generic target) the same loops
are vectorized over the 16 channels instead: correct everywhere, fast where VNNI is.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..._tvm import tvm
from ...passes.quantize.kernels import DEQUANTIZE, DEQUANTIZE_NCHW, GEMM, QUANTIZE
from .intrin_vnni import VNNI_LOCAL_INTRIN
from .schedule_util import (
    CPURule,
    block_named,
    extents,
    inline_epilogue,
    inline_prologue,
    largest_divisor,
    split_tile,
    vector_lanes,
    vectorized_tail,
)


def has_vnni(target) -> bool:
    if str(target.kind.name) != "llvm":
        return False
    return bool(tvm.target.codegen.llvm_cpu_has_features(["avx512vnni"], target))


@dataclass(frozen=True)
class Int8GemmTiles:
    """The tile sizes of the schedule: what a tuner searches around."""

    rows: int = 8  # output positions per register block
    chunks: int = 2  # 16-channel blocks per register block


class Int8Gemm(CPURule):
    def __init__(self, tiles: Int8GemmTiles = Int8GemmTiles(), sample: bool = False):
        self.tiles = tiles
        self.sample = sample

    def schedule(self, sch, target) -> bool:
        names = [(QUANTIZE,), (GEMM,), (DEQUANTIZE, DEQUANTIZE_NCHW)]
        blocks = [block_named(sch, alternatives) for alternatives in names]
        if any(block is None for block in blocks):
            return False
        quantize, gemm, dequantize = blocks
        channels_first = sch.get(dequantize).name_hint == DEQUANTIZE_NCHW
        inline_prologue(sch, quantize)
        _schedule_quantize(sch, quantize, vector_lanes(target))
        # FuseOps may have appended the layer's bias, residual and activation: one epilogue
        epilogue = inline_epilogue(sch, gemm)
        self._schedule_gemm(sch, gemm, epilogue, has_vnni(target), channels_first)
        return True

    def _schedule_gemm(self, sch, gemm, epilogue, vnni: bool, channels_first: bool) -> None:
        b, i, j, no, ni, rh, rw, ko, ki = sch.get_loops(gemm)
        j_o, j_i = split_tile(sch, j, self.tiles.rows, max_inner=16, sample=self.sample)
        no_o, no_i = split_tile(sch, no, self.tiles.chunks, max_inner=4, sample=self.sample)
        # weight panels outermost: one task's panel stays in cache while positions stream past
        sch.reorder(no_o, b, i, j_o, rh, rw, ko, j_i, no_i, ni, ki)
        if not vnni:  # the 16 channels become the vector: innermost, below the 4 steps
            sch.reorder(ki, ni)
        accumulator = sch.cache_write(gemm, 0, "local")
        sch.reverse_compute_at(accumulator, j_o, preserve_unit_loops=True)
        if channels_first:
            # NCHW: the epilogue waits for a whole output row, then writes each channel's row
            # contiguously; written tile by tile, every channel would touch a partial cache line
            sch.reverse_compute_at(epilogue, i, preserve_unit_loops=True)
            sch.parallel(sch.fuse(no_o, b, i))
        else:  # channels last: the tile's accumulators are written out as they are
            sch.compute_inline(accumulator)
            _positions_as_rows(sch, epilogue)
            sch.reverse_compute_at(epilogue, j_o, preserve_unit_loops=True)
            sch.parallel(sch.fuse(no_o, b, i, j_o))
        sch.unroll(j_i)
        sch.unroll(no_i)
        if not vnni:  # before decomposing: a reduction block without its init cannot vectorize
            sch.unroll(ki)
            sch.vectorize(ni)
        vectorized_tail(sch, gemm, rh, [])
        if vnni:
            sch.tensorize(ni, VNNI_LOCAL_INTRIN)


def _positions_as_rows(sch, epilogue) -> None:
    """A pointwise conv's GEMM runs over positions p = h * W + w (kernels.py), its NHWC epilogue
    over (h, w): the epilogue's iteration becomes (n, p, c) too, so that it can be computed
    per tile of positions (TVM cannot solve a tile of p for h and w)."""
    block = sch.get(epilogue)
    reads = [r for r in block.reads if len(r.region) == 5]  # the accumulator [N, 1, P, N/16, 16]
    if len(block.iter_vars) != 4 or not reads or int(reads[0].source.shape[1]) != 1:
        return
    width = int(block.iter_vars[2].dom.extent)
    sch.transform_block_layout(epilogue, lambda n, h, w, c: (n, h * width + w, c))


def _schedule_quantize(sch, quantize, lanes: int) -> None:
    b, i, j, k = sch.get_loops(quantize)
    sch.parallel(sch.fuse(b, i))
    (depth,) = extents(sch, [k])
    _, k_i = sch.split(k, [None, largest_divisor(depth, lanes)])
    sch.vectorize(k_i)
