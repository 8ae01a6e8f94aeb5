"""The CUDA backend: targets (architecture given or detected), the toolchain that makes TVM
compile kernels with nvcc even where no GPU is present, and the build."""

from __future__ import annotations

from ..._tvm import tvm
from .target import EXAMPLE, cuda_target, is_cuda
from .toolchain import enable_codegen, gpu_device, gpu_missing

__all__ = ["EXAMPLE", "build", "cuda_target", "gpu_device", "gpu_missing", "is_cuda"]


def build(mod, target: tvm.target.Target, opt_level: int, graph=None, database=None,
          precision: str = "fp32", capture=None):  # fmt: skip
    """Compile a Relax module into a VM executable with device code for `target`'s arch (its
    kernels captured into CUDA graphs with a `capture`, graph.Capture, which receives the count)."""
    from ...passes import build_pipeline

    enable_codegen()
    pipeline = build_pipeline(opt_level, target, graph, database, precision, capture)
    with target:  # TVM's nvcc callback reads the architecture from the current target
        return tvm.compile(mod, target=target, relax_pipeline=pipeline)
