"""The kernels worth tuning: the TIR functions of a model, as they reach scheduling, that the
backend names a tunable rule for (Backend.tunable_rule: on CPUs, our rules with tile sizes; on
GPUs, what dlight schedules as a GEMM or GEMV)."""

from __future__ import annotations

from dataclasses import dataclass

from tvm.s_tir import meta_schedule as ms

from .._tvm import tvm


@dataclass(frozen=True)
class Task:
    name: str  # the kernel's function name, e.g. fused_conv2d_add_relu
    mod: tvm.IRModule  # the kernel as {"main": PrimFunc}: MetaSchedule's workload
    weight: int  # how many times the model calls it
    rule: type  # the schedule rule whose tile sizes are searched


def extract_tasks(prepared) -> list[Task]:
    """The tunable kernels of a model prepared by api.prepare, heaviest-called first."""
    backend = prepared.backend
    pipeline = backend.tuning_pipeline(prepared.graph, prepared.opt_level)
    with tvm.transform.PassContext(opt_level=3):
        lowered = pipeline(prepared.module)
    tasks = []
    for extracted in ms.relax_integration.extract_tasks(lowered, backend.target):
        mod = extracted.dispatched[0]
        rule = backend.tunable_rule(mod)
        if rule is not None:
            tasks.append(Task(extracted.task_name, mod, int(extracted.weight), rule))
    return sorted(tasks, key=lambda task: -task.weight)
