"""Latency statistics, measured the same way for every contender."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Latency:
    """Per-run latencies of one contender, in milliseconds."""

    samples_ms: tuple[float, ...]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def min_ms(self) -> float:
        return min(self.samples_ms)

    @property
    def max_ms(self) -> float:
        return max(self.samples_ms)

    def __str__(self) -> str:
        return (
            f"median {self.median_ms:.3f} ms, min {self.min_ms:.3f} ms, max {self.max_ms:.3f} ms "
            f"({len(self.samples_ms)} runs)"
        )


def time_callable(fn, repeat: int = 20, warmup: int = 2) -> Latency:
    """Call `fn` `warmup` times untimed, then `repeat` times timed one by one."""
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, got {repeat}")
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e3)
    return Latency(tuple(samples))


def interleaved_medians(runs: dict, rounds: int, calls: int = 5) -> dict[str, float]:
    """Seconds per call of each of `runs` (name -> callable): each round times every one in
    turn, `calls` calls apiece, so that drifts in the machine's load fall on all alike; the
    median over the rounds."""
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            for _ in range(calls):
                run()
            times[name].append((time.perf_counter() - start) / calls)
    return {name: statistics.median(values) for name, values in times.items()}
