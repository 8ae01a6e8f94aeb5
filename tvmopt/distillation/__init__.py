"""Distillation: a pruned or shallower student learns to answer as its teacher does, on unlabeled
inputs (docs/distillation.md). `tvmopt.distill(teacher, student, data, ...)` is `api.distill`."""

from .api import distill
from .losses import LossConfig
from .result import DistillResult
from .trainer import TrainConfig

__all__ = ["DistillResult", "LossConfig", "TrainConfig", "distill"]
