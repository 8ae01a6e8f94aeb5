"""Pruning: zero weights so that sparse kernels can skip them (docs/pruning.md)."""

from .api import PruneResult, prune

__all__ = ["PruneResult", "prune"]
