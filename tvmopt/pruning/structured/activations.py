"""Data-aware importance ("activation" criterion): run the unpruned model on sample inputs with
ONNX Runtime and score each unit by the mean norm of what it adds to the next projection's
output, mean over tokens of ||x_unit @ W_unit||, where x_unit is the unit's slice of the
projection's input (one FFN neuron, or one head's context) and W_unit its rows of the weight.
Weight norms alone miss neurons that rarely fire and heads whose context is small."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import onnx

from ...errors import InputError


def collect(model: onnx.ModelProto, tensors: Sequence[str], samples,
            purpose: str = 'criterion "activation"') -> dict[str, np.ndarray]:  # fmt: skip
    """{tensor: (tokens, width) float32}: every sample's value of each tensor, all leading axes
    flattened into one token axis, samples concatenated; `purpose` names the option in errors."""
    samples = _checked(samples, purpose)
    session = _session(model, tensors, purpose)
    rows = {name: [] for name in tensors}
    for sample in samples:
        for name, value in zip(tensors, session.run(list(tensors), dict(sample)), strict=True):
            rows[name].append(np.asarray(value, np.float32).reshape(-1, value.shape[-1]))
    return {name: np.concatenate(values) for name, values in rows.items()}


def contribution(x: np.ndarray, weight: np.ndarray, units: int) -> np.ndarray:
    """Mean over tokens of ||x[:, unit] @ weight[unit, :]|| for `units` equal slices of x's
    columns and weight's rows."""
    size = x.shape[1] // units
    w = weight.reshape(units, size, -1).astype(np.float64)
    if size == 1:  # one neuron: ||x_j w_j|| = |x_j| ||w_j||
        return np.abs(x).mean(axis=0) * np.linalg.norm(w[:, 0], axis=1)
    per_unit = np.einsum("tuk,uko->tuo", x.reshape(len(x), units, size).astype(np.float64), w)
    return np.linalg.norm(per_unit, axis=2).mean(axis=0)


def refit(x: np.ndarray, weight: np.ndarray, kept: np.ndarray, ridge: float = 1e-3) -> np.ndarray:
    """The rows for the `kept` columns of x that best reproduce x @ weight (least squares, with
    a small ridge relative to the mean activation energy): the projection absorbs what the
    dropped units contributed, as far as the kept ones can express it."""
    x = x.astype(np.float64)
    x_kept = x[:, kept]
    gram = x_kept.T @ x_kept
    gram[np.diag_indices_from(gram)] += ridge * np.trace(gram) / len(gram)
    return np.linalg.solve(gram, x_kept.T @ (x @ weight.astype(np.float64)))


def _checked(samples, purpose: str) -> list:
    if samples is None:
        raise InputError(f"{purpose} needs samples (input dicts to run the model on)")
    samples = list(samples)
    if not samples or not all(isinstance(s, Mapping) for s in samples):
        raise InputError(f"{purpose} needs samples: a non-empty list of input dicts")
    return samples


def _session(model: onnx.ModelProto, tensors: Sequence[str], purpose: str):
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {o.name for o in probe.graph.output}
    for name in tensors:
        if name not in known:
            value = onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
            probe.graph.output.append(value)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep names
    try:
        return ort.InferenceSession(probe.SerializeToString(), options,
                                    providers=["CPUExecutionProvider"])  # fmt: skip
    except Exception as err:  # onnxruntime raises its own exception types
        raise InputError(f"{purpose}: onnxruntime cannot run the model: "
                         f"{str(err).splitlines()[0]}") from None  # fmt: skip
