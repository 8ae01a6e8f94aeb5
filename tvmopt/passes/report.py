"""Per-pass statistics for `tvmopt inspect MODEL --passes`: what each pass did to `main`."""

from __future__ import annotations

import time
from dataclasses import dataclass

from .._tvm import tvm
from .pipeline import instantiate
from .stats import count


@dataclass(frozen=True)
class PassStep:
    name: str
    bindings: tuple[int, int]  # before, after
    kernels: tuple[int, int]
    seconds: float


def pass_report(mod, graph: list, lowering: list, target) -> list[PassStep]:
    """Run a backend's `graph` passes (factories) and `lowering` (passes) one by one, counting
    bindings and kernel launches around each."""
    steps = []
    with target, tvm.transform.PassContext(opt_level=3):
        for name, each in instantiate(graph) + lowering:
            before, start = count(mod), time.perf_counter()
            mod = each(mod)
            after = count(mod)
            steps.append(PassStep(name, (before[0], after[0]), (before[1], after[1]),
                                  time.perf_counter() - start))  # fmt: skip
    return steps


def format_report(steps: list[PassStep]) -> str:
    lines = [f"{'pass':<28} {'bindings':>15} {'kernels':>13} {'ms':>8}"]
    for step in steps:
        bindings = f"{step.bindings[0]} -> {step.bindings[1]}"
        kernels = f"{step.kernels[0]} -> {step.kernels[1]}"
        lines.append(f"{step.name:<28} {bindings:>15} {kernels:>13} {step.seconds * 1e3:>8.1f}")
    return "\n".join(lines)
