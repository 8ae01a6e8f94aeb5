"""The learning-rate schedule: linear warm-up, then cosine decay to zero."""

from __future__ import annotations

import math


def warmup_cosine(warmup: int, total: int):
    """A LambdaLR factor: step/warmup during warm-up, then half a cosine down to 0 at `total`."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def two_phases(warmup_share: float, first: int, total: int, first_scale: float = 1.0):
    """A LambdaLR factor for a layer-wise phase of `first` steps (peak `first_scale`) followed by
    the end-to-end phase up to `total`: each warms up over `warmup_share` of its own steps and
    decays to 0, so the second starts afresh rather than at the first's tail."""
    head = warmup_cosine(round(warmup_share * first), first)
    tail = warmup_cosine(round(warmup_share * (total - first)), total - first)

    def factor(step: int) -> float:
        return first_scale * head(step) if step < first else tail(step - first)

    return factor
