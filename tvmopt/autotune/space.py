"""The search space of a kernel: its CPU schedule rule, with each tile size a sampled decision.

The rule's default tiles are one point of the space (the same trace with other decisions), so
the untuned kernel is measured first and seeds the search; MetaSchedule's evolutionary search
mutates the tile decisions from there, guided by the XGBoost cost model. Measured here,
MetaSchedule's generic space reached 36-42 GFLOP/s on a ResNet conv after 128 trials, where
this rule's default already runs at about 150.
"""

from __future__ import annotations

from tvm import s_tir
from tvm.s_tir import meta_schedule as ms

from ..backends.cuda.target import is_cuda
from .gpu_space import gpu_default_schedule, gpu_space_generator


def space_generator(rule: type, target) -> ms.space_generator.SpaceGenerator:
    if is_cuda(target):
        return gpu_space_generator()

    def sample(sch: s_tir.Schedule) -> s_tir.Schedule:
        if not rule(sample=True).schedule(sch, target):
            raise ValueError(f"{rule.__name__} no longer applies to this kernel")
        return sch

    return ms.space_generator.ScheduleFn(
        sample, sch_rules=[], postprocs=[], mutator_probs={ms.mutator.MutateTileSize(): 1.0}
    )


def default_schedule(rule: type, mod, target) -> s_tir.Schedule:
    """The untuned kernel, as a schedule whose trace is a tuning record's."""
    if is_cuda(target):
        return gpu_default_schedule(rule, mod, target)
    sch = s_tir.Schedule(mod)
    rule().schedule(sch, target)
    return sch
