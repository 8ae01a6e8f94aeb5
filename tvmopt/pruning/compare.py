"""The pruned model's outputs against the dense model's, both run by ONNX Runtime on the same
sample inputs: random ones from the model's input specs, or the user's."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import onnx

from ..errors import InputError, first_line
from ..frontend.signature import graph_inputs
from ..inputs import check_inputs, random_inputs, read_npz
from .report import OutputError, cosine, max_abs_error

RANDOM_SAMPLES = 3


def sample_feeds(graph: onnx.GraphProto, inputs=None) -> list[dict]:
    """Feeds for ONNX Runtime: `inputs` (a .npz path or a dict of arrays) checked against the
    model's inputs, else RANDOM_SAMPLES random ones (symbolic dims need `inputs`)."""
    specs = graph_inputs(graph)
    if inputs is None:
        return [random_inputs(specs, seed=seed) for seed in range(RANDOM_SAMPLES)]
    if isinstance(inputs, (str, os.PathLike)):
        inputs = read_npz(inputs)
    if not isinstance(inputs, Mapping):
        raise InputError(f"inputs must be a .npz path or a dict of arrays, got "
                         f"{type(inputs).__name__}")  # fmt: skip
    arrays = check_inputs(specs, inputs)
    return [{spec.name: array for spec, array in zip(specs, arrays, strict=True)}]


def run_onnxruntime(model: onnx.ModelProto, feeds: list[dict], which: str) -> list[dict]:
    """Every output of `model` on every feed; an InputError when ONNX Runtime refuses it."""
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(
            model.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        names = [out.name for out in session.get_outputs()]
        return [dict(zip(names, session.run(names, feed), strict=True)) for feed in feeds]
    except Exception as err:  # noqa: BLE001 - onnxruntime's errors share no base class
        raise InputError(f"ONNX Runtime cannot run the {which} model: "
                         f"{first_line(err, type(err).__name__)}") from None  # fmt: skip


def output_errors(dense: list[dict], pruned: list[dict]) -> tuple[OutputError, ...]:
    """Per output, over all samples: the largest absolute difference and the cosine."""
    return tuple(_error(name, [run[name] for run in dense], [run[name] for run in pruned])
                 for name in dense[0])  # fmt: skip


def _error(name: str, dense: list, pruned: list) -> OutputError:
    a = np.concatenate([np.ravel(x) for x in dense])
    b = np.concatenate([np.ravel(x) for x in pruned])
    return OutputError(name, max_abs_error(a, b), cosine(a, b))
