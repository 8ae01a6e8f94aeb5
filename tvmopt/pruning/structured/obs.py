"""Greedy least-squares pruning ("obs" criterion): remove the units of a projection y = x @ W one
at a time, each time the one whose removal raises the least-squares error on sample inputs the
least once the kept rows of W are refit, and refit them (Optimal Brain Surgeon, applied to groups
of rows as in OBC/ZipLM). Unlike scoring every unit once and refitting afterwards, it sees that
two correlated units can stand in for each other: drop one and the other takes its share."""

from __future__ import annotations

import numpy as np


def choose(x: np.ndarray, weight: np.ndarray, units: int, kept_units: int, bias=None):
    """(kept units, refit rows, what to add to the bias or None): with an intercept where the
    projection has a bias to take it."""
    if bias is None:
        return (*prune(x, weight, units, kept_units), None)
    return prune_with_bias(x, weight, units, kept_units)


def prune_with_bias(x: np.ndarray, weight: np.ndarray, units: int, kept_units: int):
    """As `prune`, for a projection followed by a bias: fit on centered inputs, and also return
    what to add to the bias, so that the mean of the dropped units' output moves into it
    (least squares with an intercept; GELU outputs have a mean far from 0)."""
    mean = x.mean(axis=0, dtype=np.float64)
    kept, rows_weight = prune(x - mean.astype(x.dtype), weight, units, kept_units)
    size = x.shape[1] // units
    rows = (kept[:, None] * size + np.arange(size)).reshape(-1)
    return kept, rows_weight, mean @ weight.astype(np.float64) - mean[rows] @ rows_weight


def prune(x: np.ndarray, weight: np.ndarray, units: int, kept_units: int,
          ridge: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(kept unit indices, sorted; refit rows for the kept units' columns of x), keeping
    `kept_units` of `units` equal slices of x's columns and weight's rows. Single-row units
    (FFN neurons) go in ~96 steps of the cheapest few, each step's cost taken before it."""
    size = x.shape[1] // units
    inverse = np.linalg.inv(_gram(x, ridge))
    w = weight.astype(np.float64).copy()
    alive = np.arange(units)
    per_step = 1 if size > 1 else max(1, (units - kept_units) // 96)
    while len(alive) > kept_units:
        count = min(per_step, len(alive) - kept_units)
        chosen = np.argsort(_costs(inverse, w, alive, size), kind="stable")[:count]
        rows = np.concatenate([_rows(unit, size) for unit in alive[chosen]])
        inverse, w = _remove(inverse, w, rows)
        alive = np.delete(alive, chosen)
    rows = np.concatenate([_rows(unit, size) for unit in alive])
    return alive, w[rows]


def _gram(x: np.ndarray, ridge: float) -> np.ndarray:
    """X^T X with a ridge relative to the mean activation energy (as activations.refit)."""
    x = x.astype(np.float64)
    gram = x.T @ x
    gram[np.diag_indices_from(gram)] += ridge * np.trace(gram) / len(gram)
    return gram


def _rows(unit: int, size: int) -> np.ndarray:
    return np.arange(unit * size, (unit + 1) * size)


def _costs(inverse: np.ndarray, w: np.ndarray, alive: np.ndarray, size: int) -> np.ndarray:
    if size == 1:  # one row each: ||W_j||^2 / H^-1_jj, all at once
        return np.sum(w[alive] ** 2, axis=1) / np.diag(inverse)[alive]
    return np.array([_cost(inverse, w, _rows(unit, size)) for unit in alive])


def _cost(inverse: np.ndarray, w: np.ndarray, rows: np.ndarray) -> float:
    """The squared error that removing these rows adds: tr(W_g^T (H^-1_gg)^-1 W_g)."""
    block = inverse[np.ix_(rows, rows)]
    return float(np.sum(w[rows] * np.linalg.solve(block, w[rows])))


def _remove(inverse: np.ndarray, w: np.ndarray, rows: np.ndarray):
    """The OBS update: the other rows absorb what these carried; these rows and H^-1's row and
    column for them become zero (the inverse of the Gram matrix without them)."""
    block_inv = np.linalg.inv(inverse[np.ix_(rows, rows)])
    column = inverse[:, rows] @ block_inv
    w = w - column @ w[rows]
    inverse = inverse - column @ inverse[rows, :]
    w[rows] = 0.0
    inverse[rows, :] = 0.0
    inverse[:, rows] = 0.0
    return inverse, w
