"""Structured pruning of ONNX models: whole FFN neurons, attention heads and conv channels go,
so every tensor they touch shrinks and the model runs faster on any target."""

from .api import prune_structured
from .layers import drop_layers, find_layers
from .result import StructuredResult

__all__ = ["StructuredResult", "drop_layers", "find_layers", "prune_structured"]
