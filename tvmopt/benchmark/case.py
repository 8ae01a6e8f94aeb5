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
    calibration: list[dict] = field(default_factory=list)  # int8 contenders calibrate on these


CALIBRATION_SAMPLES = 8  # seeded random inputs, like the timed ones: the same for every contender


def case_from_onnx(name: str, path: Path, example_inputs=None, torch_build=None) -> BenchCase:
    """A case for an ONNX file: fed `example_inputs` (tensors in input order) or random inputs."""
    model = onnx.load(str(path))
    specs = graph_inputs(model.graph)
    if example_inputs is None:
        feeds = random_inputs(specs, seed=0)
    else:
        feeds = {s.name: t.numpy() for s, t in zip(specs, example_inputs, strict=True)}
    calibration = [random_inputs(specs, seed=1 + i) for i in range(CALIBRATION_SAMPLES)]
    return BenchCase(name, Path(path), feeds, count_flops(model), torch_build,
                     calibration=calibration)  # fmt: skip


def case_from_suite(model, cache_dir: Path) -> BenchCase:
    """A suite model, fed the very example inputs it was exported with."""
    from .models import export

    path = export(model, cache_dir)
    _, example_inputs = model.build()
    return case_from_onnx(model.name, path, example_inputs, model.build)
