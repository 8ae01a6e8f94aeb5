"""CUDA graphs (`--cuda-graph`): the kernels between a model's first and last are captured once,
on its first run, and each later run replays them with one launch.

TVM's own RewriteCUDAGraph does the work: it lifts the run of kernels whose arguments are weights
or statically planned buffers into a capture function, and the VM's CUDA runtime captures and
replays it. The kernels that read the inputs or write the outputs stay outside, since their
buffers change from call to call. TVM reads its switch from the PassContext, which tvmopt's
(the instruments') leaves unset: the pass runs in one of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvm import relax

from ..._tvm import tvm

SWITCH = "relax.backend.use_cuda_graph"
TVM_PASS = "RewriteCUDAGraph"  # its name in TVM's CUDA finalize passes
CAPTURED = "_cuda_graph_capture"  # in the names of the functions TVM captures


@dataclass
class Capture:
    """What the capture left: kernel launches in all, those inside CUDA graphs, and graphs."""

    kernels: int = 0
    captured: int = 0
    graphs: int = 0

    def record(self) -> dict:
        return {"kernels": self.kernels, "captured": self.captured, "graphs": self.graphs}


def describe_capture(record: dict) -> str:
    """One line from Capture.record(), as `tvmopt compile` prints it."""
    graphs = "graph" if record["graphs"] == 1 else "graphs"
    return (
        f"cuda graph: {record['captured']} of {record['kernels']} kernel launches captured "
        f"({record['graphs']} {graphs}; the first run captures, later runs replay)"
    )


def capture_pass(capture: Capture) -> tvm.transform.Pass:
    rewrite = relax.transform.RewriteCUDAGraph()

    @tvm.transform.module_pass(opt_level=0, name="tvmopt.CUDAGraph")
    def capture_kernels(mod, _ctx):
        with tvm.transform.PassContext(config={SWITCH: True}):
            mod = rewrite(mod)
        _count(mod, capture)
        return mod

    return capture_kernels


def with_capture(passes: list[tuple[str, tvm.transform.Pass]], capture: Capture) -> list:
    """`passes` (named), with TVM's RewriteCUDAGraph switched on; `capture` receives its count."""
    return [(name, capture_pass(capture) if name == TVM_PASS else p) for name, p in passes]


def _count(mod: tvm.IRModule, capture: Capture) -> None:
    kernels = {gv.name_hint for gv, f in mod.functions.items() if isinstance(f, tvm.tirx.PrimFunc)}
    capture.kernels = capture.captured = capture.graphs = 0
    for gvar, func in mod.functions.items():
        if isinstance(func, relax.Function):
            launches = _launches(func, kernels)
            capture.kernels += launches
            if CAPTURED in gvar.name_hint:  # main_cuda_graph_capture, ..._capture1, ...
                capture.captured += launches
                capture.graphs += 1


def _launches(func: relax.Function, kernels: set[str]) -> int:
    """How many calls `func` makes to the kernels (TIR functions) named in `kernels`."""
    calls = []

    def visit(expr) -> None:
        if isinstance(expr, relax.Call) and isinstance(expr.op, relax.GlobalVar):
            if expr.op.name_hint in kernels:
                calls.append(expr)

    relax.analysis.post_order_visit(func, visit)
    return len(calls)
