"""How a decoder's next token is picked from its logits: greedy, top-k or top-p (nucleus)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import OptionError

STRATEGIES = ("greedy", "top_k", "top_p")


@dataclass(frozen=True)
class Sampling:
    """A strategy and its settings, checked on construction.

    greedy takes the most likely token (the first, on a tie: numpy's argmax, as a reference
    loop over ONNX Runtime's logits does). top_k draws among the `k` most likely, top_p among
    the fewest most likely whose probabilities sum to `p`; both after dividing the logits by
    `temperature`, from a generator seeded with `seed`."""

    strategy: str = "greedy"
    k: int | None = None
    p: float | None = None
    temperature: float = 1.0
    seed: int | None = None

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise OptionError(f"strategy must be one of {', '.join(STRATEGIES)}, "
                              f"got {self.strategy!r}")  # fmt: skip
        if self.strategy == "top_k" and not (isinstance(self.k, int) and self.k >= 1):
            raise OptionError(f"top_k sampling needs k, a whole number >= 1, got {self.k!r}")
        if self.strategy == "top_p" and not (isinstance(self.p, float | int) and 0 < self.p <= 1):
            raise OptionError(f"top_p sampling needs p in (0, 1], got {self.p!r}")
        if not self.temperature > 0:
            raise OptionError(f"temperature must be > 0, got {self.temperature!r}")

    def picker(self):
        """A function from one position's logits (vocab,) to the next token id."""
        if self.strategy == "greedy":
            return lambda logits: int(np.argmax(logits))
        rng = np.random.default_rng(self.seed)
        keep = _top_k if self.strategy == "top_k" else _top_p
        setting = self.k if self.strategy == "top_k" else self.p

        def pick(logits: np.ndarray) -> int:
            candidates, probabilities = keep(logits.astype(np.float64) / self.temperature, setting)
            return int(rng.choice(candidates, p=probabilities))

        return pick


def _top_k(scaled: np.ndarray, k: int):
    candidates = np.argsort(-scaled, kind="stable")[:k]
    return candidates, _softmax(scaled[candidates])


def _top_p(scaled: np.ndarray, p: float):
    order = np.argsort(-scaled, kind="stable")
    probabilities = _softmax(scaled[order])
    # the fewest tokens whose mass reaches p; the most likely one always stays
    count = int(np.searchsorted(np.cumsum(probabilities), p)) + 1
    return order[:count], _softmax(scaled[order[:count]])


def _softmax(values: np.ndarray) -> np.ndarray:
    exp = np.exp(values - values.max())
    return exp / exp.sum()
