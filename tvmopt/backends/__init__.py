"""Code generation backends: one module per target family (`llvm` now; `cuda` and `vta` later).
`resolve_target` turns what a user typed into a complete TVM target."""

from .target import resolve_target, target_record

__all__ = ["resolve_target", "target_record"]
