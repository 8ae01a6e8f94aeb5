"""smooth.py's GroupEmulation shares the exact products, the fake-quantized weights and the
quantized input between a group's candidate migrations: each candidate's error equals, bit for
bit, the emulation done for it alone (the reference below, the code it replaced), for every
alpha with and without per-token scales, on rows with outlier channels and tokens."""

from __future__ import annotations

import numpy as np
import pytest

from tvmopt.passes.quantize.emulate import int8_product, token_error
from tvmopt.passes.quantize.observers import make_observer
from tvmopt.passes.quantize.smooth import ALPHAS, TINY, GroupEmulation, Migration, migration_scale
from tvmopt.passes.quantize.spec import QuantizeConfig


def reference_error(rows, weights, how: Migration, config, levels: int) -> float:
    """The group's error as group_error computed it, candidate by candidate."""
    rows = rows.astype(np.float64)
    s = np.ones(rows.shape[1]) if how.scale is None else how.scale.astype(np.float64)
    scaled = rows / s
    r = np.maximum(np.abs(scaled).max(axis=1, keepdims=True), TINY) if how.per_token else 1.0
    observer = make_observer(config.method)
    observer.observe(scaled / r)
    qparams = observer.qparams(config.symmetric_activations)
    return sum(token_error(rows @ w, int8_product(scaled / r, s[:, None] * w, qparams, levels) * r)
               for w in weights)  # fmt: skip


def _group(seed: int, width: int = 48):
    """Rows with a few wide channels and tokens (a LayerNorm output's), and three weights."""
    rng = np.random.default_rng(seed)
    rows = rng.standard_normal((64, width)).astype(np.float32)
    rows[:, rng.choice(width, 3, replace=False)] *= 40
    rows[rng.choice(64, 2, replace=False)] *= 25
    rows[5] = 0  # a row of zeros: r = TINY
    weights = [rng.standard_normal((width, n)).astype(np.float32) for n in (32, 32, 16)]
    return rows, weights, np.abs(rows).max(axis=0)


@pytest.mark.parametrize("method", ["minmax", "percentile"])
@pytest.mark.parametrize("levels", [63, 127])
def test_shared_emulation_bit_for_bit(method, levels):
    config = QuantizeConfig(method=method)
    for seed in range(3):
        rows, weights, peak = _group(seed)
        scales = [None if a is None else migration_scale(peak, weights, a) for a in ALPHAS]
        group = GroupEmulation(rows, weights, levels)
        for per_token in (False, True):  # static first, as _best asks, then per token
            for s in scales:
                how = Migration(s, per_token)
                assert group.error(how, config) == reference_error(rows, weights, how, config,
                                                                   levels)  # fmt: skip
