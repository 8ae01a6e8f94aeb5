"""The kernels worth tuning: the TIR functions of a model, as they reach scheduling, that one of
the CPU schedule rules with tile sizes applies to (on GPUs: those dlight schedules as a GEMM or
GEMV). Element-wise and reduction kernels keep the fallback rule: they are memory-bound, and
there is no tile to search."""

from __future__ import annotations

from dataclasses import dataclass

from tvm.s_tir import meta_schedule as ms

from .._tvm import tvm
from ..backends import vta
from ..backends.cuda.target import is_cuda
from ..backends.llvm.rule_conv2d import Conv2dNCHW
from ..backends.llvm.rule_conv_nhwc import Conv2dNHWC
from ..backends.llvm.rule_depthwise import DepthwiseConv2dNCHW
from ..backends.llvm.rule_int8_gemm import Int8Gemm
from ..backends.llvm.rule_matmul import Matmul
from ..backends.llvm.rule_winograd import Conv2dWinograd
from ..errors import TuneError
from ..passes.pipeline import tuning_pipeline
from .gpu_space import tunable_gpu_rule

# tried in the order of the untuned rules (backends/llvm/rules.py): the same rule wins
TUNABLE_RULES = (Int8Gemm, Conv2dNHWC, Conv2dWinograd, Conv2dNCHW, Matmul)


@dataclass(frozen=True)
class Task:
    name: str  # the kernel's function name, e.g. fused_conv2d_add_relu
    mod: tvm.IRModule  # the kernel as {"main": PrimFunc}: MetaSchedule's workload
    weight: int  # how many times the model calls it
    rule: type  # the schedule rule whose tile sizes are searched


def extract_tasks(prepared, precision: str = "fp32") -> list[Task]:
    """The tunable kernels of a model prepared by api.prepare (compiled at `precision`),
    heaviest-called first."""
    name = "vta" if vta.is_vta(prepared.target) else prepared.target.kind.name
    if name not in ("llvm", "cuda"):
        raise TuneError(f"tuning for {name} is not implemented yet")
    pipeline = tuning_pipeline(prepared.opt_level, prepared.target, prepared.graph, precision)
    with tvm.transform.PassContext(opt_level=3):
        lowered = pipeline(prepared.module)
    tasks = []
    for extracted in ms.relax_integration.extract_tasks(lowered, prepared.target):
        rule = tunable_rule(extracted.dispatched[0], prepared.target)
        if rule is not None:
            mod = extracted.dispatched[0]
            tasks.append(Task(extracted.task_name, mod, int(extracted.weight), rule))
    return sorted(tasks, key=lambda task: -task.weight)


def tunable_rule(mod, target) -> type | None:
    """The rule whose tile sizes are searched for `mod`; None for what no tunable rule
    schedules untuned (depthwise convs have their own untiled rule, which comes first)."""
    if is_cuda(target):
        return tunable_gpu_rule(mod, target)
    if DepthwiseConv2dNCHW().apply(mod["main"], target, False) is not None:
        return None
    for rule in TUNABLE_RULES:
        if rule().apply(mod["main"], target, False) is not None:
            return rule
    return None
