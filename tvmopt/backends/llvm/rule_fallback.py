"""The fallback every other function gets: parallel outer loops, vectorized inner loops.

Element-wise producers are inlined into their consumers first (as TVM's dlight does); then each
remaining block's spatial loops are fused, split into a parallel outer part and a vectorized
inner part of the target's lanes. Blocks with a reduction parallelize their outer spatial
loops only (dlight's normalization puts spatial loops first). Nothing is inlined in a function
with an extern block (TE's hand-written IR: NMS, argsort): it declares no reads or writes, so
a producer only it reads looks unread, and inlining one (NMS's sorted scores) dropped it.
"""

from __future__ import annotations

import math

from tvm import tirx
from tvm.s_tir.dlight.analysis import normalize_prim_func

from .schedule_util import CPURule, extents, largest_divisor, vector_lanes
from .symbolic_loops import parallel_rows_vector_tail

MIN_ROW_LANES = 2  # 58-channel rows: 2-float vectors, 339 -> 57 us against the gathers
MIN_PARALLEL_WORK = 1 << 12  # elements below which threads cost more than they save
# What TVM's LLVM codegen cannot vectorize: intrinsics LLVM has no vector form of ("unknown
# intrinsic"), and float8 conversions, whose saturation TVM writes as a scalar if_then_else
# (ONNX's Cast to FLOAT8E4M3FN and friends)
SCALAR_ONLY = ("T.cosh(", "T.sinh(", "float8")


class Fallback(CPURule):
    def schedule(self, sch, target) -> bool:
        infos = normalize_prim_func(sch)
        if infos is None:
            return False
        if not _has_extern_block(sch):
            infos = _inline_elementwise(sch, infos)
        lanes = vector_lanes(target)
        for info in infos or []:
            _parallelize(sch, info, lanes)
        return True


def _has_extern_block(sch) -> bool:
    blocks = sch.get_child_blocks(sch.get_sblock("root"))
    return any(not sch.get(b).reads and not sch.get(b).writes for b in blocks)


def _inline_elementwise(sch, infos):
    """Element-wise blocks inlined into their consumers, or the last ones into their producer,
    as dlight's try_inline_contiguous_spatial does, except into a reduction: a reduction over
    unit axes (a mean over a size-1 axis) loses its reduction loop in dlight's normalization
    and looks element-wise, and the consumers inlined into it, init included, ran a uint8
    requantization at every step of the sum (found by the differential fuzzer, tests/fuzz)."""
    remaining, pending = [], []
    for info in infos:
        if info.is_injective() and sch.get(info.block_rv).init is None:
            pending.append(info)
            continue
        remaining += _inline(sch, pending) + [info]
        pending = []
    return remaining + _inline(sch, pending)


def _inline(sch, blocks: list) -> list:
    """`blocks` less those inlined, consumers first, then into producers that are no reduction."""
    while True:
        done = next((b for b in blocks if _tried(sch.compute_inline, b.block_rv)), None)
        done = done or next((b for b in blocks if _into_producer(sch, b.block_rv)), None)
        if done is None:
            return blocks
        blocks = [b for b in blocks if b is not done]


def _into_producer(sch, block) -> bool:
    producers = sch.get_producers(block)
    if any(sch.get(p).init is not None for p in producers):
        return False
    return _tried(sch.reverse_compute_inline, block)


def _tried(action, block) -> bool:
    try:
        action(block)
    except Exception:  # noqa: BLE001 - TVM's schedule errors: the block stays where it is
        return False
    return True


def _parallelize(sch, info, lanes: int) -> None:
    kinds = [it.kind for it in info.iters]
    spatial = [it.loop_rv for it in info.iters[: _leading(kinds, "S")]]
    if not spatial or 0 in extents(sch, spatial):  # fusing an empty loop divides by zero
        return
    vectorize = not any(name in str(sch.get(info.block_rv)) for name in SCALAR_ONLY)
    if len(spatial) == len(kinds) and None in extents(sch, spatial):
        parallel_rows_vector_tail(sch, spatial, lanes, vectorize)
        return
    innermost = extents(sch, spatial)[-1]
    fused = sch.fuse(*spatial) if len(spatial) > 1 else spatial[0]
    (extent,) = extents(sch, [fused])
    if extent is not None and extent < 2:
        return
    if len(spatial) < len(kinds):  # a reduction (or an opaque loop) follows
        sch.parallel(fused)
        return
    width = _vector_width(sch.get(info.block_rv), extent, innermost, lanes)
    outer, inner = sch.split(fused, [None, width])
    if extent >= MIN_PARALLEL_WORK:
        sch.parallel(outer)
    if vectorize:
        sch.vectorize(inner)


def _vector_width(block, extent: int, innermost: int | None, lanes: int) -> int:
    """The largest divisor of the fused `extent` up to `lanes`; but where the block reads a
    buffer of another shape than it writes (a concat's inputs, a broadcast bias) and that vector
    would straddle a row (the `innermost` axis, and every buffer's last one), the largest
    divisor of the rows within `lanes` (at least MIN_ROW_LANES): a straddling vector's lanes
    index the inputs through a modulo or pick between them lane by lane, which LLVM gathers or
    copies one float at a time.
    ShuffleNetV2's concats of 116 + 116 channels on 14x14 took 147 us on AVX-512 (16 lanes
    straddle rows of 232) and 31 on AVX2, 11 in vectors of 4 (znver4)."""
    width = largest_divisor(extent, lanes)
    shapes = [region.source.shape for region in (*block.reads, *block.writes)]
    if innermost is None or all(list(shape) == list(shapes[-1]) for shape in shapes):
        return width
    rows = [int(shape[-1]) for shape in shapes if shape and isinstance(shape[-1], tirx.IntImm)]
    row = math.gcd(innermost, *(extent for extent in rows if extent > 1))
    if row % width == 0:
        return width
    row_width = largest_divisor(row, lanes)
    return row_width if row_width >= MIN_ROW_LANES else width


def _leading(kinds: list[str], kind: str) -> int:
    count = 0
    while count < len(kinds) and kinds[count] == kind:
        count += 1
    return count
