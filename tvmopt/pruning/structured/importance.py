"""Which units (neurons, heads, channels) to keep: score each by the norm of its weights (or, with
the "activation" criterion, of its contribution on sample inputs: activations.py), drop the
lowest-scoring fraction."""

from __future__ import annotations

import math

import numpy as np

from ...errors import InputError

CRITERIA = ("l1", "l2", "activation", "obs")
DATA_AWARE = ("activation", "obs")  # criteria that run the model on samples


def check_criterion(criterion: str) -> None:
    if criterion not in CRITERIA:
        raise InputError(f"criterion must be one of {', '.join(CRITERIA)}, got {criterion!r}")


def scores(criterion: str, parts) -> np.ndarray:
    """One score per unit: the norm over every part's row for that unit (a part is an array whose
    first axis is the unit)."""
    rows = [np.asarray(part, dtype=np.float64).reshape(len(part), -1) for part in parts]
    flat = np.concatenate(rows, axis=1)
    if criterion == "l1":
        return np.abs(flat).sum(axis=1)
    return np.sqrt((flat * flat).sum(axis=1))


def keep(unit_scores: np.ndarray, fraction: float, round_to: int = 1) -> np.ndarray:
    """Sorted indices of the units to keep: all but the `fraction` with the lowest scores (ties
    go by index), and never fewer than one."""
    order = np.argsort(unit_scores, kind="stable")
    count = kept_count(len(unit_scores), fraction, round_to)
    return np.sort(order[len(unit_scores) - count:])


def kept_count(count: int, fraction: float, round_to: int = 1) -> int:
    """How many of `count` units pruning by `fraction` keeps: never fewer than one, rounded up
    to a multiple of `round_to` where the units have that many (a vector's width of channels:
    45 channels of 64 leave every kernel a partial vector)."""
    kept = count - min(math.floor(count * fraction + 1e-9), count - 1)
    return min(count, -(-kept // round_to) * round_to)
