"""The backends, by name: a new target is a folder under backends/ and one line here. A name is
also the "kind" its JSON targets give ({"kind": "cuda", ...}) and what artifacts record."""

from __future__ import annotations

from .base import Backend
from .cuda import CUDABackend
from .llvm import LLVMBackend
from .vta import VTABackend

BACKENDS: dict[str, type[Backend]] = {
    "llvm": LLVMBackend,  # CPUs through LLVM: the host (the default), or a cross target
    "cuda": CUDABackend,  # NVIDIA GPUs through nvcc, with or without a GPU here
    "vta": VTABackend,  # this CPU plus the simulated VTA accelerator for int8 convs
}
DEFAULT = "llvm"  # no --target: this CPU
ARCH_DEFAULT = "cuda"  # --arch alone: the one backend whose targets have architectures
