"""The CPU search space of a kernel: its schedule rule, with each tile size a sampled decision.

The rule's default tiles are one point of the space (the same trace with other decisions), so
the untuned kernel is measured first and seeds the search; MetaSchedule's evolutionary search
mutates the tile decisions from there, guided by the XGBoost cost model. Measured here,
MetaSchedule's generic space reached 36-42 GFLOP/s on a ResNet conv after 128 trials, where
this rule's default already runs at about 150. Element-wise and reduction kernels keep the
fallback rule: they are memory-bound, and there is no tile to search.
"""

from __future__ import annotations

from tvm import s_tir
from tvm.s_tir import meta_schedule as ms

from .rule_conv2d import Conv2dNCHW
from .rule_conv_nhwc import Conv2dNHWC
from .rule_depthwise import DepthwiseConv2dNCHW
from .rule_group_conv_nhwc import GroupConv2dNHWC
from .rule_int8_gemm import Int8Gemm
from .rule_matmul import Matmul
from .rule_winograd import Conv2dWinograd

# tried in the order of the untuned rules (rules.py): the same rule wins
TUNABLE_RULES = (Int8Gemm, Conv2dNHWC, GroupConv2dNHWC, Conv2dWinograd, Conv2dNCHW, Matmul)


def tunable_rule(mod, target) -> type | None:
    """The rule whose tile sizes are searched for `mod`; None for what no tunable rule
    schedules untuned (depthwise convs have their own untiled rule, which comes first)."""
    if DepthwiseConv2dNCHW().apply(mod["main"], target, False) is not None:
        return None
    for rule in TUNABLE_RULES:
        if rule().apply(mod["main"], target, False) is not None:
            return rule
    return None


def space_generator(rule: type, target) -> ms.space_generator.SpaceGenerator:
    def sample(sch: s_tir.Schedule) -> s_tir.Schedule:
        if not rule(sample=True).schedule(sch, target):
            raise ValueError(f"{rule.__name__} no longer applies to this kernel")
        return sch

    return ms.space_generator.ScheduleFn(
        sample, sch_rules=[], postprocs=[], mutator_probs={ms.mutator.MutateTileSize(): 1.0}
    )


def default_schedule(rule: type, mod, target) -> s_tir.Schedule:
    """The untuned kernel, as a schedule whose trace is a tuning record's."""
    sch = s_tir.Schedule(mod)
    rule().schedule(sch, target)
    return sch
