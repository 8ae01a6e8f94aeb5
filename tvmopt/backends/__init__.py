"""Code generation backends, one folder each (llvm: CPUs; cuda: NVIDIA GPUs; vta: the simulated
accelerator), registered by name in registry.py. Each is a Backend (base.py): its pipeline,
kernel rules, build, artifact record, loader and tuning space. `resolve` turns what a user
typed into its Backend, once; target.py is the only place a target is parsed."""

from .base import Backend, BuildOptions
from .registry import BACKENDS
from .target import (
    backend_class,
    recorded_backend,
    resolve,
    resolve_target,
    target_argument,
    target_record,
)

__all__ = ["BACKENDS", "Backend", "BuildOptions", "backend_class", "recorded_backend", "resolve",
           "resolve_target", "target_argument", "target_record"]  # fmt: skip
