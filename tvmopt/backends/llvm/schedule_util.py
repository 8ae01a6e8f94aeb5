"""Small helpers shared by the CPU schedule rules."""

from __future__ import annotations

import math

from tvm import s_tir, tirx
from tvm.s_tir.dlight import ScheduleRule

from ..._tvm import tvm
from ..kernel_record import RULE_KEY
from .cpu import cpu_of


def vector_lanes(target, dtype_bits: int = 32) -> int:
    """SIMD lanes for this target and element size (16 float32 lanes on AVX-512, 8 on AVX2, 4 on
    NEON): cpu.py's."""
    return cpu_of(target).lanes(dtype_bits)


# TVM 0.27 lowers a CPU buffer in "local" scope, or of 1 KiB or more, to a TVMBackendAllocWorkspace
# and FreeWorkspace call pair at every iteration of the loop it lives in; a "global" one under
# 1 KiB becomes a stack slot, which LLVM keeps in registers. For a register tile the calls cost
# more than the arithmetic: int8 pointwise 32->16 @112, 79 -> 27 us.
REGISTER_SCOPE = "global"  # and under 1 KiB: cpu.TILE_BYTES


def register_accumulator(sch: s_tir.Schedule, block):
    """The block's output cached in a register tile (see REGISTER_SCOPE): the new block."""
    return sch.cache_write(block, 0, REGISTER_SCOPE)


def largest_divisor(extent: int, limit: int) -> int:
    """The largest divisor of `extent` not above `limit`: splits stay exact, never predicated."""
    return max(d for d in range(1, min(extent, limit) + 1) if extent % d == 0)


def split_tile(sch: s_tir.Schedule, loop, limit: int, max_inner: int, sample: bool):
    """Split `loop` in two, exactly. Untuned: the largest divisor up to `limit` inside. When
    `sample`, the inner factor is a decision the tuner mutates (any divisor up to `max_inner`);
    either way the split is a SamplePerfectTile in the trace, so both live in one search space."""
    (extent,) = extents(sch, [loop])
    inner = largest_divisor(extent, limit)
    decision = None if sample else [extent // inner, inner]
    bound = max(max_inner, inner)  # explicit tiles beyond the searched range stay valid
    factors = sch.sample_perfect_tile(loop, n=2, max_innermost_factor=bound, decision=decision)
    return sch.split(loop, factors)


def iter_kinds(sch: s_tir.Schedule, block) -> str:
    """'S' for each spatial block var, 'R' for each reduction one, '?' otherwise."""
    names = {tirx.IterVar.DataPar: "S", tirx.IterVar.CommReduce: "R"}
    return "".join(names.get(int(iv.iter_type), "?") for iv in sch.get(block).iter_vars)


def extents(sch: s_tir.Schedule, loops) -> list[int | None]:
    result = []
    for loop in loops:
        extent = sch.get(loop).extent
        result.append(int(extent) if isinstance(extent, tirx.IntImm) else None)
    return result


def root_blocks(sch: s_tir.Schedule) -> list:
    return list(sch.get_child_blocks(sch.get_sblock("root")))


def block_named(sch: s_tir.Schedule, names: tuple[str, ...]):
    """The only root block whose name is one of `names`, or None."""
    found = [b for b in root_blocks(sch) if sch.get(b).name_hint in names]
    return found[0] if len(found) == 1 else None


class Decline(Exception):
    """The function is not of the shape a rule assumed: the next rule tries (CPURule.apply)."""


def inline_epilogue(sch: s_tir.Schedule, anchor) -> object | None:
    """Inline every element-wise block after `anchor` into the last one; return that last block
    (None when the anchor writes the output itself). Declines by raising ScheduleError, or
    Decline where the blocks after the anchor write different numbers of elements: a Pad that
    FuseOps appended covers more than the anchor's tile loops, and the rows it adds were left
    unwritten (found by the differential fuzzer, tests/fuzz). A reshape keeps the count."""
    blocks = root_blocks(sch)
    position = next(i for i, b in enumerate(blocks) if sch.get(b).same_as(sch.get(anchor)))
    after = blocks[position + 1 :]
    if not after:
        return None
    sizes = {_elements(w.source) for b in after for w in sch.get(b).writes}
    if len(sizes) > 1:
        raise Decline(f"the epilogue's blocks write {sorted(sizes)} elements")
    for block in after[:-1]:
        sch.compute_inline(block)
    return after[-1]


def _elements(buffer) -> int | None:
    sizes = [getattr(d, "value", None) for d in buffer.shape]
    return None if None in sizes else math.prod(sizes)


def inline_prologue(sch: s_tir.Schedule, first) -> None:
    """Inline every block before `first` into its readers: element-wise producers FuseOps put
    ahead of a kernel (a residual's dequantization), which its epilogue then computes as it reads.
    Declines by raising ScheduleError."""
    for block in root_blocks(sch):
        if sch.get(block).same_as(sch.get(first)):
            return
        sch.compute_inline(block)


def materialize_padding(sch: s_tir.Schedule, lanes: int) -> None:
    """Compute each padded input ("pad_temp") in parallel, its rows vectorized: a window reads
    it many times, so inlining it would put the bounds check in the innermost loop."""
    for pad in [b for b in root_blocks(sch) if sch.get(b).name_hint == "pad_temp"]:
        loops = sch.get_loops(pad)
        sch.parallel(sch.fuse(*loops[:-1]))
        width = extents(sch, loops[-1:])[0]
        if width is not None:
            _, inner = sch.split(loops[-1], [None, largest_divisor(width, lanes)])
            sch.vectorize(inner)


def padded_anchor(sch: s_tir.Schedule, name: str, target, materialize: bool = True):
    """A channels-last float kernel's anchor block `name` (None if absent), after what comes
    before its padded input ("pad_temp", materialized unless not `materialize`) is inlined, and
    its epilogue: (anchor, the last block, into which every element-wise block after the anchor
    is inlined)."""
    anchor = block_named(sch, (name,))
    if anchor is None:
        return None
    # FuseOps may have put element-wise producers ahead (the network input's transpose)
    pad = block_named(sch, ("pad_temp",))
    inline_prologue(sch, anchor if pad is None else pad)
    if materialize:
        materialize_padding(sch, vector_lanes(target))
    return anchor, inline_epilogue(sch, anchor)


def vector_split(sch: s_tir.Schedule, loop, lanes: int):
    """Split `loop` into (outer, inner) with inner the largest divisor up to `lanes`: the vector."""
    (extent,) = extents(sch, [loop])
    return sch.split(loop, [None, largest_divisor(extent, lanes)])


def parallel_rows_vector_inner(sch: s_tir.Schedule, block, lanes: int) -> None:
    """A 4-D element-wise block (an int8 layer's quantize, an NCHW write-out): its two outer
    loops in parallel, its innermost vectorized `lanes` at a time."""
    first, second, _, inner = sch.get_loops(block)
    sch.parallel(sch.fuse(first, second))
    sch.vectorize(vector_split(sch, inner, lanes)[1])


def unrolled_write_out(sch: s_tir.Schedule, epilogue, lanes: int) -> None:
    """A register tile's write-out (the epilogue computed at the tile): its channels vectorized
    `lanes` at a time and every other loop of the tile unrolled, so the accumulators are read at
    constant offsets and stay in registers, where a loop over them would keep them on the stack
    (int8 64->256 @56: 214 -> 302 GMAC/s, float: 70-80 -> 103)."""
    tile_loops = sch.get_loops(epilogue)[-len(sch.get(epilogue).iter_vars) :]
    vectors, lanes_loop = vector_split(sch, tile_loops[-1], lanes)
    for loop in [*tile_loops[:-1], vectors]:
        sch.unroll(loop)
    sch.vectorize(lanes_loop)


def vectorized_tail(sch: s_tir.Schedule, reduction, first_reduction_loop, blocks) -> None:
    """Split the reduction's init off before `first_reduction_loop`, then vectorize the innermost
    loop of the init and of each block in `blocks` (its accumulator write-back, its epilogue;
    None entries are skipped)."""
    init = sch.decompose_reduction(reduction, first_reduction_loop)
    for block in [init, *(b for b in blocks if b is not None)]:
        sch.vectorize(sch.get_loops(block)[-1])


class CPURule(ScheduleRule):
    """A rule that schedules in place and says whether it applied. With `sample`, its tile sizes
    are sampled decisions (backends/llvm/tuning.py), else its defaults. A ScheduleError (or TVM's
    InternalError, e.g. from an empty loop, or a ValueError from its compute-at bound solver)
    means the function is not of the shape the rule assumed: it declines, the next rule tries,
    and the last resort is TVM's unscheduled code."""

    sample: bool = False

    def apply(self, func, target, tunable):
        if not isinstance(func, tirx.PrimFunc):
            return None
        sch = s_tir.Schedule(func)
        try:
            if not self.schedule(sch, target):
                return None
        except (s_tir.ScheduleError, tvm.error.InternalError, ValueError, Decline):
            return None
        # which rule scheduled it: `tvmopt run --profile` says (kernel_record.py)
        sch.annotate(sch.get_sblock("root"), RULE_KEY, type(self).__name__)
        return sch

    def schedule(self, sch: s_tir.Schedule, target) -> bool:
        raise NotImplementedError
