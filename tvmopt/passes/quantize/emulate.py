"""A matmul layer's int8 arithmetic in numpy, to measure its own error without compiling.

The kernels (convert.py) quantize the input per tensor to uint8 (`x ~ (q - zp) * scale`) and the
weight per output column to symmetric int8 with `levels` levels, and their int32 sums are exact:
so the layer's int8 output is `dequantize(quantize(x)) @ dequantize(quantize(W))`, which this
computes in float64 on sample rows of the input. The error is counted per row (token) and
averaged, so that tokens with small outputs are not drowned by those with large ones.
Smoothing (smooth.py) compares candidate migrations with it, and the sensitivity fallback
(fallback.py) ranks layers by it, each layer alone: its input taken from the float32 model,
so that no upstream error counts against it.
"""

from __future__ import annotations

import numpy as np

from .observers import QParams, qparams_for


def fake_quantized_input(x: np.ndarray, qparams: QParams) -> np.ndarray:
    """x after uint8 quantization and back, as the kernels see it."""
    q = np.clip(np.round(x / qparams.scale) + qparams.zero_point, 0, 255)
    return (q - qparams.zero_point) * qparams.scale


def fake_quantized_weight(weight: np.ndarray, levels: int) -> np.ndarray:
    """A [K, N] weight after per-column symmetric quantization to `levels` levels and back."""
    peak = np.abs(weight).max(axis=0)
    scale = np.where(peak > 0, peak / levels, 1.0)
    return np.clip(np.round(weight / scale), -levels, levels) * scale


def minmax_qparams(x: np.ndarray, symmetric: bool = False) -> QParams:
    return qparams_for(float(x.min()), float(x.max()), symmetric)


def int8_product(x: np.ndarray, weight: np.ndarray, qparams: QParams, levels: int):
    """x @ weight as the int8 kernel computes it, in float64."""
    return fake_quantized_input(x, qparams) @ fake_quantized_weight(weight, levels)


def token_error(exact: np.ndarray, approx: np.ndarray) -> float:
    """The mean over rows (tokens) of ||row error||^2 / ||exact row||^2: a token whose output is
    small counts as much as one whose output is large, as a token-level cosine sees them."""
    signal = np.sum(exact**2, axis=1)
    noise = np.sum((exact - approx) ** 2, axis=1)
    kept = signal > 0
    return float(np.mean(noise[kept] / signal[kept])) if kept.any() else 0.0


def relative_error(x: np.ndarray, weight: np.ndarray, qparams: QParams, levels: int) -> float:
    """token_error of the int8 product over the rows of `x` ([rows, K])."""
    x, weight = x.astype(np.float64), weight.astype(np.float64)
    return token_error(x @ weight, int8_product(x, weight, qparams, levels))


def sqnr_db(error: float) -> float:
    """A relative error (power) as signal-to-quantization-noise in dB."""
    return float("inf") if error <= 0 else float(-10.0 * np.log10(error))
