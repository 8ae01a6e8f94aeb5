"""Distillation: a pruned or shallower student learns to answer as its teacher does, on unlabeled
inputs (docs/distillation.md).

`tvmopt.distill(teacher, student, data, ...)` is `api.distill`: this package is also the function,
so that `tvmopt.distill` stays callable once the package is imported (Python sets a package's
submodules as attributes of its parent, which would otherwise hide a function of the same name).
"""

import sys
import types

from .api import distill
from .losses import LossConfig
from .result import DistillResult
from .trainer import TrainConfig

__all__ = ["DistillResult", "LossConfig", "TrainConfig", "distill"]


class _CallablePackage(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return distill(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
