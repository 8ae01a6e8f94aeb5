"""The GPU search space: MetaSchedule's own CUDA rules (multi-level tiling through shared memory
and registers, thread binding, unrolling), seeded with dlight's untuned schedule.

Our CPU space searches the tile sizes of our own rules; on GPUs the untuned kernels come from
dlight, whose rules have no sampled decisions, so the search runs in MetaSchedule's generic
space instead, and dlight's schedule is measured first so the database's best is never worse
than the kernel compiled without tuning.
"""

from __future__ import annotations

from tvm import s_tir
from tvm.s_tir import dlight as dl
from tvm.s_tir import meta_schedule as ms

from .rule_int8_gemm import Int8Gemm

# the compute-bound kernels: our int8 layers' GEMMs, and what dlight schedules as a GEMM (convs
# included) or a GEMV; element-wise and reduction kernels are memory-bound, with little to search
TUNABLE_GPU_RULES = (Int8Gemm, dl.gpu.Matmul, dl.gpu.GEMV)


def tunable_rule(mod, target) -> type | None:
    for rule in TUNABLE_GPU_RULES:
        if rule().apply(mod["main"], target, False) is not None:
            return rule
    return None


def space_generator() -> ms.space_generator.PostOrderApply:
    return ms.space_generator.PostOrderApply(sch_rules="cuda", postprocs="cuda",
                                             mutator_probs="cuda")  # fmt: skip


def default_schedule(rule: type, mod, target) -> s_tir.Schedule:
    """The untuned schedule of the kernel (dlight's, or our int8 rule's), with its trace: what
    compiling without tuning gives."""
    applied = rule().apply(mod["main"], target, False)
    return applied[0] if isinstance(applied, list) else applied
