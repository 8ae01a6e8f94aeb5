"""How tvmopt compares its outputs with a reference (ONNX Runtime, or onnx's reference outputs)."""

from __future__ import annotations

import numpy as np

FP32_TOLERANCE = 1e-4


def max_relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """Max absolute error divided by the reference's scale (its max magnitude, at least 1e-6)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.shape != expected.shape:
        return float("inf")
    if actual.size == 0:
        return 0.0
    if expected.dtype.kind in "biu":
        return float(np.abs(actual.astype(np.float64) - expected).max() > 0)
    scale = max(float(np.abs(expected).max()), 1e-6)
    return float(np.abs(actual.astype(np.float64) - expected).max()) / scale
