"""The fallback every other function gets: parallel outer loops, vectorized inner loops.

Element-wise producers are inlined into their consumers first (TVM's dlight helper); then each
remaining block's spatial loops are fused, split into a parallel outer part and a vectorized
inner part of the target's lanes. Blocks with a reduction parallelize their outer spatial
loops only (dlight's normalization puts spatial loops first).
"""

from __future__ import annotations

from tvm.s_tir.dlight import try_inline_contiguous_spatial
from tvm.s_tir.dlight.analysis import normalize_prim_func

from .schedule_util import CPURule, extents, largest_divisor, vector_lanes

MIN_PARALLEL_WORK = 1 << 12  # elements below which threads cost more than they save
# Intrinsics LLVM has no vector form of: vectorized, codegen fails with "unknown intrinsic".
SCALAR_ONLY_INTRINSICS = ("T.cosh(", "T.sinh(")


class Fallback(CPURule):
    def schedule(self, sch, target) -> bool:
        infos = normalize_prim_func(sch)
        if infos is None:
            return False
        infos = try_inline_contiguous_spatial(sch, infos)
        lanes = vector_lanes(target)
        for info in infos or []:
            _parallelize(sch, info, lanes)
        return True


def _parallelize(sch, info, lanes: int) -> None:
    kinds = [it.kind for it in info.iters]
    spatial = [it.loop_rv for it in info.iters[: _leading(kinds, "S")]]
    if not spatial or 0 in extents(sch, spatial):  # fusing an empty loop divides by zero
        return
    fused = sch.fuse(*spatial) if len(spatial) > 1 else spatial[0]
    (extent,) = extents(sch, [fused])
    if extent is None or extent < 2:
        return
    if len(spatial) < len(kinds):  # a reduction (or an opaque loop) follows
        sch.parallel(fused)
        return
    outer, inner = sch.split(fused, [None, largest_divisor(extent, lanes)])
    if extent >= MIN_PARALLEL_WORK:
        sch.parallel(outer)
    if not any(name in str(sch.get(info.block_rv)) for name in SCALAR_ONLY_INTRINSICS):
        sch.vectorize(inner)


def _leading(kinds: list[str], kind: str) -> int:
    count = 0
    while count < len(kinds) and kinds[count] == kind:
        count += 1
    return count
