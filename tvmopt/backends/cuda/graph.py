"""CUDA graphs (`--cuda-graph`): the kernels between a model's first and last are captured once,
on its first run, and each later run replays them with one launch.

TVM's own RewriteCUDAGraph does the work: it lifts the run of kernels whose arguments are weights
or statically planned buffers into a capture function, and the VM's CUDA runtime captures and
replays it. The kernels that read the inputs or write the outputs stay outside, since their
buffers change from call to call. TVM reads its switch from the PassContext, which tvmopt's
(the instruments') leaves unset: the pass runs in one of its own.
"""

from __future__ import annotations

from tvm import relax

from ..._tvm import tvm

SWITCH = "relax.backend.use_cuda_graph"
TVM_PASS = "RewriteCUDAGraph"  # its name in TVM's CUDA finalize passes


def capture_pass() -> tvm.transform.Pass:
    rewrite = relax.transform.RewriteCUDAGraph()

    @tvm.transform.module_pass(opt_level=0, name="tvmopt.CUDAGraph")
    def capture(mod, _ctx):
        with tvm.transform.PassContext(config={SWITCH: True}):
            return rewrite(mod)

    return capture


def with_capture(passes: list[tuple[str, tvm.transform.Pass]]) -> list:
    """`passes` (named), with TVM's RewriteCUDAGraph switched on."""
    return [(name, capture_pass() if name == TVM_PASS else p) for name, p in passes]
