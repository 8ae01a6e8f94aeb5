"""Pruning: zero weights so that sparse kernels can skip them (docs/pruning.md).

`tvmopt.prune(model, ...)` calls `prune` on this package: the package is callable, so that the
name stays the package (`tvmopt.prune.spec`, `import tvmopt.prune.x as y`) where exporting the
function under it would shadow every submodule.
"""

import sys
import types

from .api import PruneResult, prune

__all__ = ["PruneResult", "prune"]


class _CallablePackage(types.ModuleType):
    __call__ = staticmethod(prune)


sys.modules[__name__].__class__ = _CallablePackage
