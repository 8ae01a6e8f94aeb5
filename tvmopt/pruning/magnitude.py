"""Magnitude pruning masks on weights seen as (batch, K, N) (views.py): True keeps a weight.

A unit is a weight (unstructured) or a block (scored by its L2 or L1 norm); the round(S * units)
lowest-scored units go, per weight (scope layer) or over all weights at once (scope global: one
threshold). Counting units rather than comparing with a threshold makes the sparsity exact when
scores tie. N:M needs no threshold: each group of M along K keeps its N largest.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .spec import NM, Block, PruneSpec


def check_fits(spec: PruneSpec, name: str, view) -> None:
    """An InputError naming the weight when its (K, N) does not split into the pattern's units."""
    k, n = view.kn_shape
    pattern = spec.pattern
    if isinstance(pattern, Block) and (k % pattern.rows or n % pattern.cols):
        raise InputError(f"block {pattern.rows}x{pattern.cols} does not divide the weight "
                         f"'{name}' of shape {view.shape} ((K, N) = ({k}, {n}) as its "
                         f"{view.op} reads it); exclude it or pick another block")  # fmt: skip
    if isinstance(pattern, NM) and k % pattern.m:
        raise InputError(f"N:M {pattern.describe()} needs M = {pattern.m} to divide K, but the "
                         f"weight '{name}' of shape {view.shape} has (K, N) = ({k}, {n}) as its "
                         f"{view.op} reads it; exclude it")  # fmt: skip


def keep_masks(spec: PruneSpec, weights: list[np.ndarray]) -> list[np.ndarray]:
    """One keep mask per (batch, K, N) weight."""
    if isinstance(spec.pattern, NM):
        return [nm_keep(w, spec.pattern) for w in weights]
    scores = [unit_scores(w, spec.pattern, spec.norm) for w in weights]
    if spec.scope == "global":
        every_unit = np.concatenate([s.ravel() for s in scores])
        keeps = _split(_keep_highest(every_unit, spec.sparsity), scores)
    else:
        keeps = [_keep_highest(s.ravel(), spec.sparsity).reshape(s.shape) for s in scores]
    return [_expand(keep, spec.pattern) for keep in keeps]


def unit_scores(weight: np.ndarray, pattern, norm: str) -> np.ndarray:
    """|w| per weight, or each block's norm, shaped (batch, K / rows, N / cols)."""
    magnitude = np.abs(weight.astype(np.float64))
    if not isinstance(pattern, Block):
        return magnitude
    batch, k, n = weight.shape
    blocks = magnitude.reshape(batch, k // pattern.rows, pattern.rows, n // pattern.cols,
                               pattern.cols)  # fmt: skip
    if norm == "l1":
        return blocks.sum(axis=(2, 4))
    return np.sqrt((blocks**2).sum(axis=(2, 4)))


def _keep_highest(scores: np.ndarray, sparsity: float) -> np.ndarray:
    """False at the round(sparsity * size) lowest scores."""
    drop = int(np.floor(sparsity * scores.size + 0.5))
    keep = np.ones(scores.size, dtype=bool)
    if drop:
        keep[np.argpartition(scores, drop - 1)[:drop]] = False
    return keep


def _split(flat: np.ndarray, shaped: list[np.ndarray]) -> list[np.ndarray]:
    ends = np.cumsum([s.size for s in shaped])[:-1]
    return [part.reshape(s.shape) for part, s in zip(np.split(flat, ends), shaped, strict=True)]


def _expand(keep: np.ndarray, pattern) -> np.ndarray:
    """A per-unit mask made per-weight: each block's flag repeated over its rows and columns."""
    if not isinstance(pattern, Block):
        return keep
    return keep.repeat(pattern.rows, axis=1).repeat(pattern.cols, axis=2)


def nm_keep(weight: np.ndarray, pattern: NM) -> np.ndarray:
    """Each group of M consecutive weights along K keeps its N largest magnitudes."""
    batch, k, n = weight.shape
    groups = np.abs(weight.astype(np.float64)).reshape(batch, k // pattern.m, pattern.m, n)
    largest = np.argsort(-groups, axis=2, kind="stable")[:, :, : pattern.n]
    keep = np.zeros(groups.shape, dtype=bool)
    np.put_along_axis(keep, largest, True, axis=2)
    return keep.reshape(weight.shape)
