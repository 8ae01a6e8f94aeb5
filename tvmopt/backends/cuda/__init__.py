"""The CUDA backend (backend.py): targets, architecture given or detected (target.py); the
toolchain that makes TVM compile kernels with nvcc even where no GPU is present (toolchain.py);
the pipeline (pipeline.py), our int8 rule on dp4a (rule_int8_gemm.py), CUDA graphs (graph.py)
and the tuning space (tuning.py)."""

from .backend import CUDABackend
from .target import EXAMPLE, cuda_target
from .toolchain import enable_codegen, gpu_device, gpu_missing

__all__ = ["EXAMPLE", "CUDABackend", "cuda_target", "enable_codegen", "gpu_device", "gpu_missing"]
