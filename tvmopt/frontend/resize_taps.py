"""ONNX Resize along one axis as taps: for each output position, the input positions it reads
and their weights, computed in numpy at import time (shapes are static then).

    y[..., o, ...] = sum_t weights[o, t] * x[..., indices[o, t], ...]

Every mode is such a map: nearest reads one position, linear two, cubic four, and antialias
widens linear's and cubic's filter by 1/scale when downsampling. tf_crop_and_resize also
flags the positions whose source lies outside the input: they take `extrapolation_value`.
Resize over several axes is this map applied one axis at a time, as the spec's reference does.
The formulas follow onnx/reference/ops/op_resize.py (the executable spec) step for step,
float64 included, so that nearest's ties round the way it says.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AxisResize:
    """One axis's sizes, its scale (which the coordinate formulas use: with scales given, or
    keep_aspect_ratio_policy, it need not be output/input), and its ROI (tf_crop_and_resize)."""

    input_size: int
    output_size: int
    scale: float
    roi: tuple[float, float] = (0.0, 1.0)


@dataclass(frozen=True)
class Interpolation:
    """Resize's attributes that shape the taps, with the spec's defaults."""

    mode: str = "nearest"
    coordinate_mode: str = "half_pixel"
    nearest_mode: str = "round_prefer_floor"
    cubic_coeff_a: float = -0.75
    exclude_outside: bool = False
    antialias: bool = False


@dataclass(frozen=True)
class Taps:
    indices: np.ndarray  # (output, taps) int64, within [0, input)
    weights: np.ndarray  # (output, taps) float64
    outside: np.ndarray  # (output,) bool: takes the extrapolation value


def axis_taps(axis: AxisResize, how: Interpolation) -> Taps:
    """The taps of one axis's resize."""
    x, outside = source_coordinates(axis, how.coordinate_mode)
    # The spec reads an integer coordinate as ratio 1 from the position on its left
    left = np.floor(x)
    left = np.where(x == left, left - 1, left)
    ratio = x - left
    offsets, weights = _kernel(ratio, axis.scale, how)
    indices = left.astype(np.int64)[:, None] + offsets[None, :]
    if how.exclude_outside:
        weights = np.where((indices < 0) | (indices >= axis.input_size), 0.0, weights)
        total = weights.sum(axis=1, keepdims=True)
        weights = weights / np.where(total == 0, 1.0, total)
    # Positions past either end read the edge (the spec pads by repeating it)
    indices = np.clip(indices, 0, axis.input_size - 1)
    return _one_tap_where_possible(Taps(indices, weights, outside))


def source_coordinates(axis: AxisResize, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Each output position's coordinate in the input, and whether it lies outside the crop."""
    y = np.arange(axis.output_size, dtype=np.float64)
    width, scale = axis.input_size, axis.scale
    real_output = scale * width  # the formulas use the unrounded output size
    outside = np.zeros(axis.output_size, dtype=bool)
    if mode == "half_pixel":
        x = (y + 0.5) / scale - 0.5
    elif mode == "pytorch_half_pixel":
        x = np.full_like(y, -0.5) if real_output == 1 else (y + 0.5) / scale - 0.5
    elif mode == "half_pixel_symmetric":
        offset = width / 2 * (1 - axis.output_size / real_output)  # centres the rounded output
        x = offset + (y + 0.5) / scale - 0.5
    elif mode == "asymmetric":
        x = y / scale
    elif mode == "align_corners":
        x = np.zeros_like(y) if real_output == 1 else y * (width - 1) / (real_output - 1)
    elif mode == "tf_crop_and_resize":
        start, end = axis.roi
        if real_output == 1:
            x = np.full_like(y, (end - start) * (width - 1) / 2)
        else:
            x = y * (end - start) * (width - 1) / (real_output - 1)
        x = x + start * (width - 1)
        outside = (x < 0) | (x > width - 1)
    else:
        raise ValueError(f"unknown coordinate_transformation_mode '{mode}'")
    return x, outside


def _kernel(ratio: np.ndarray, scale: float, how: Interpolation):
    """Tap offsets from the left position, and each output's weights for them."""
    if how.mode == "nearest":
        return np.array([0, 1]), _nearest_weights(ratio, how.nearest_mode)
    if how.mode not in ("linear", "cubic"):
        raise ValueError(f"unknown Resize mode '{how.mode}'")
    # Antialias stretches the filter by 1/scale when downsampling (and renormalizes it)
    stretch = min(scale, 1.0) if how.antialias else 1.0
    reach = 1 if how.mode == "linear" else 2  # the filter's half width, in input positions
    first = int(np.floor(-reach / stretch) + 1)
    offsets = np.arange(first, 2 - first)
    distance = np.abs(stretch * (offsets[None, :] - ratio[:, None]))
    if how.mode == "linear":
        weights = np.clip(1 - distance, 0, 1)
    else:
        weights = _cubic(distance, how.cubic_coeff_a)
    if how.antialias:
        weights = weights / weights.sum(axis=1, keepdims=True)
    return offsets, weights


def _nearest_weights(ratio: np.ndarray, mode: str) -> np.ndarray:
    """Nearest picks the left or the right position; an integer coordinate (ratio 1), the right."""
    if mode == "round_prefer_floor":
        right = ratio > 0.5
    elif mode == "round_prefer_ceil":
        right = ratio >= 0.5
    elif mode == "floor":
        right = ratio == 1
    elif mode == "ceil":
        right = np.ones_like(ratio, dtype=bool)
    else:
        raise ValueError(f"unknown nearest_mode '{mode}'")
    return np.stack([~right, right], axis=1).astype(np.float64)


def _cubic(distance: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution kernel with coefficient `a`."""
    d, d2, d3 = distance, distance**2, distance**3
    near = (a + 2) * d3 - (a + 3) * d2 + 1
    far = a * d3 - 5 * a * d2 + 8 * a * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


def _one_tap_where_possible(taps: Taps) -> Taps:
    """Nearest's taps (one weight 1, the rest 0) as the single position each reads."""
    picked = taps.weights.argmax(axis=1)
    rows = np.arange(len(picked))
    if not np.all(taps.weights[rows, picked] == 1) or not np.all(taps.weights.sum(axis=1) == 1):
        return taps
    indices = taps.indices[rows, picked][:, None]
    return Taps(indices, np.ones_like(indices, dtype=np.float64), taps.outside)
