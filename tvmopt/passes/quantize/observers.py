"""Observers: each sees an activation batch by batch and turns what it saw into qparams.

Memory stays constant however much data streams through: min/max are two numbers, and the
histogram observers keep a fixed number of bins over [0, range) of |x|, doubling the range
(merging neighbouring bins) whenever a batch reaches past it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .spec import Entropy, MinMax, Mse, Percentile


@dataclass(frozen=True)
class QParams:
    """x ~ (q - zero_point) * scale, q in [0, 255]."""

    scale: float
    zero_point: int


def qparams_for(low: float, high: float, symmetric: bool) -> QParams:
    low, high = min(low, 0.0), max(high, 0.0)  # zero must be exact: it is the padding
    if symmetric:
        bound = max(-low, high, 1e-8)
        return QParams(bound / 127.0, 128)
    scale = max(high - low, 1e-8) / 255.0
    return QParams(scale, int(np.clip(round(-low / scale), 0, 255)))


class MinMaxObserver:
    def __init__(self, config: MinMax):
        self.low, self.high = np.inf, -np.inf

    def observe(self, x: np.ndarray) -> None:
        self.low = min(self.low, float(x.min()))
        self.high = max(self.high, float(x.max()))

    def seen(self) -> bool:
        return self.low <= self.high

    def qparams(self, symmetric: bool) -> QParams:
        return qparams_for(self.low, self.high, symmetric)


class HistogramObserver(MinMaxObserver):
    """|x| in `bins` bins over [0, limit); subclasses pick a clipping threshold from it."""

    def __init__(self, config):
        super().__init__(config)
        self.config = config
        self.counts = np.zeros(config.bins, np.float64)
        self.limit = 0.0

    def observe(self, x: np.ndarray) -> None:
        super().observe(x)
        # Exact zeros (half of a ReLU's output) are represented exactly at any scale; counted,
        # their spike in the first bin drags entropy's threshold far too low.
        magnitude = np.abs(x[x != 0])
        peak = float(magnitude.max(initial=0.0))
        if peak <= 0.0:
            return
        self._grow_to(peak)
        index = np.minimum((magnitude * (self.config.bins / self.limit)).astype(np.int64),
                           self.config.bins - 1)  # fmt: skip
        self.counts += np.bincount(index, minlength=self.config.bins)

    def _grow_to(self, peak: float) -> None:
        if self.limit == 0.0:
            self.limit = peak
            return
        while peak > self.limit:  # double the range: pairs of bins merge into the lower half
            merged = self.counts.reshape(-1, 2).sum(axis=1)
            self.counts = np.concatenate([merged, np.zeros_like(merged)])
            self.limit *= 2.0

    def bin_width(self) -> float:
        return self.limit / self.config.bins

    def qparams(self, symmetric: bool) -> QParams:
        if self.limit == 0.0:
            return super().qparams(symmetric)
        threshold = self.threshold()
        low, high = max(self.low, -threshold), min(self.high, threshold)
        return qparams_for(low, high, symmetric)

    def threshold(self) -> float:
        raise NotImplementedError


class PercentileObserver(HistogramObserver):
    def threshold(self) -> float:
        cumulative = np.cumsum(self.counts) / self.counts.sum()
        index = int(np.searchsorted(cumulative, self.config.percentile / 100.0))
        return (min(index, self.config.bins - 1) + 1) * self.bin_width()


ENTROPY_CANDIDATES = 256  # clipping points tried, evenly spaced: each costs a KL over the bins


class EntropyObserver(HistogramObserver):
    def threshold(self) -> float:
        levels, bins = self.config.levels, self.config.bins
        step = max(1, (bins - levels) // ENTROPY_CANDIDATES)
        candidates = sorted({*range(levels, bins + 1, step), bins})  # no clipping is a candidate
        divergences = [_clipped_kl(self.counts, stop, levels) for stop in candidates]
        return candidates[int(np.argmin(divergences))] * self.bin_width()


def _clipped_kl(counts: np.ndarray, stop: int, levels: int) -> float:
    """KL(P || Q): P is the histogram clipped at `stop` bins (outliers into the last bin), Q the
    bins below `stop` quantized to `levels` levels and spread back over the bins each level
    covers. Q leaves the outliers out, so clipping too much mass costs divergence."""
    kept = counts[:stop]
    reference = kept.copy()
    reference[-1] += counts[stop:].sum()
    if kept.sum() == 0:
        return np.inf
    expanded = np.zeros(stop)
    for group in np.array_split(np.arange(stop), levels):
        nonzero = kept[group] > 0
        if nonzero.any():
            expanded[group[nonzero]] = kept[group].sum() / nonzero.sum()
    p, q = reference / reference.sum(), expanded / expanded.sum()
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / np.maximum(q[mask], 1e-12))))


class MseObserver(HistogramObserver):
    def threshold(self) -> float:
        width = self.bin_width()
        centers = (np.arange(self.config.bins) + 0.5) * width
        thresholds = np.linspace(width, self.limit, self.config.candidates)
        errors = [_quantization_mse(centers, self.counts, t) for t in thresholds]
        return float(thresholds[int(np.argmin(errors))])


def _quantization_mse(centers: np.ndarray, counts: np.ndarray, threshold: float) -> float:
    step = threshold / 127.0
    quantized = np.minimum(np.round(centers / step), 127.0) * step
    return float(np.sum(counts * (centers - quantized) ** 2))


OBSERVERS = {
    MinMax: MinMaxObserver,
    Percentile: PercentileObserver,
    Entropy: EntropyObserver,
    Mse: MseObserver,
}


def make_observer(method):
    return OBSERVERS[type(method)](method)
