"""Both models compiled by tvmopt for the host and timed in one run, interleaved, so that the
machine's drift (other processes, clocks) falls on both alike."""

from __future__ import annotations

import statistics

import onnx

from .report import LatencyRatio

ROUNDS = 15  # each round times both models, `REPEAT` runs apiece
REPEAT = 5


def latency_ratio(dense: onnx.ModelProto, pruned: onnx.ModelProto, feeds: dict) -> LatencyRatio:
    from ..api import compile as compile_model

    compiled = [compile_model(model, target="llvm") for model in (dense, pruned)]
    samples: tuple[list, list] = ([], [])
    for _ in range(ROUNDS):
        for model, times in zip(compiled, samples, strict=True):
            times.extend(model.benchmark(feeds, repeat=REPEAT, warmup=1).samples_ms)
    target = compiled[0].metadata.target
    name = f"llvm -mcpu={target['mcpu']}" if target.get("mcpu") else "llvm"
    dense_ms, pruned_ms = (statistics.median(times) for times in samples)
    return LatencyRatio(name, dense_ms, pruned_ms, len(samples[0]))
