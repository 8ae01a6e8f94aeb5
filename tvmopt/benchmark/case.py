"""One model to benchmark: its ONNX file, fixed inputs, the ONNX Runtime fp32 reference and,
for suite models, the PyTorch module it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from ..frontend.signature import graph_inputs
from ..inputs import random_inputs
from .flops import count_flops


@dataclass
class BenchCase:
    name: str
    onnx_path: Path
    feeds: dict[str, np.ndarray]
    flops: int
    torch_build: object = None  # () -> (module, example_inputs), for suite models only
    reference: list[np.ndarray] = field(default_factory=list)


def case_from_onnx(name: str, path: Path, feeds=None, torch_build=None) -> BenchCase:
    model = onnx.load(str(path))
    if feeds is None:
        feeds = random_inputs(graph_inputs(model.graph), seed=0)
    return BenchCase(name, Path(path), feeds, count_flops(model), torch_build)


def case_from_suite(model, cache_dir: Path) -> BenchCase:
    """A suite model, fed the very example inputs it was exported with."""
    from .models import export

    path = export(model, cache_dir)
    _, example_inputs = model.build()
    names = [spec.name for spec in graph_inputs(onnx.load(str(path)).graph)]
    feeds = {name: t.numpy() for name, t in zip(names, example_inputs, strict=True)}
    return case_from_onnx(model.name, path, feeds, model.build)
