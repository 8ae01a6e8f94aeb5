"""Weights for the depth-8 vpmaddubsw step (cpu.py's vpmaddubsw8-256/512): each of its int16
lanes sums four products of a uint8 activation and an int8 weight, so it is exact only where
the positive weights of each quad sum to at most QUAD_LIMIT, and the negative ones too
(int8_quads_fit). Calibrated quantization chooses the weights: a channel whose 7-bit weights
break the bound is quantized again at the coarser scale that fits (fit_quads), the other
channels keep theirs. A pre-quantized model's weights are what they are: where they do not
fit, the layer runs on the depth-4 step (Int8Step.admits).
"""

from __future__ import annotations

import numpy as np

from .cpu import QUAD_LIMIT, int8_quads, int8_quads_fit

# a quad's 4 weights round up by at most 0.5 each: fitted to this, the rounded quad stays within
# QUAD_LIMIT
QUAD_TARGET = QUAD_LIMIT - 2


def worst_quads(quantized) -> np.ndarray:
    """Per output channel, the largest positive or negative quad sum (int8_quads)."""
    positive, negative = int8_quads(quantized)
    return np.maximum(positive.max(axis=1, initial=0), negative.max(axis=1, initial=0))


def fit_quads(weight_oihw: np.ndarray, quantized: np.ndarray, scale: np.ndarray):
    """(quantized, scale) of `weight_oihw` [O, C, KH, KW] whose quads fit: the channels that
    did not fit, quantized again at scale x worst quad / QUAD_TARGET. Weights of more than 7
    bits (8-bit ones, asked for: the vpmaddwd step is exact on them) are left as they are."""
    if np.abs(quantized.astype(np.int32)).max(initial=0) > 63 or int8_quads_fit(quantized):
        return quantized, scale
    # the quads of the float weight in units of the present scale: what rounding cannot exceed
    worst = worst_quads(weight_oihw / scale[:, None, None, None])
    coarser = np.where(worst > QUAD_TARGET, scale * worst / QUAD_TARGET, scale).astype(np.float32)
    refit = np.round(weight_oihw / coarser[:, None, None, None])
    levels = int(np.abs(quantized.astype(np.int32)).max(initial=0))
    refit = np.clip(refit, -levels, levels).astype(np.int8)
    assert int8_quads_fit(refit), "a refitted quad exceeds the depth-8 step's bound"
    return refit, coarser
