"""Pruning: zero weights so that sparse kernels can skip them (docs/pruning.md).
`tvmopt.prune(model, ...)` is `api.prune`."""

from .api import PruneResult, prune

__all__ = ["PruneResult", "prune"]
