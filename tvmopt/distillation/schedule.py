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
