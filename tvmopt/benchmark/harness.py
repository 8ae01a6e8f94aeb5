"""Check every contender against ONNX Runtime fp32, then time the ones that match, taking turns
in short blocks so that drift on a shared machine hits all of them alike."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import first_line
from ..passes.quantize.report import cosine
from ..reference import max_relative_error
from ..timing import Latency
from .case import BenchCase
from .contenders import Contender, OnnxRuntime, Prepared


@dataclass
class Result:
    model: str
    contender: str
    status: str  # ok | mismatch | failed | unavailable
    note: str = ""
    latency: Latency | None = None
    compile_seconds: float | None = None
    artifact_bytes: int | None = None
    flops: int = 0
    extra: dict = field(default_factory=dict)


def bench_case(case: BenchCase, contenders: list[Contender], threads: int, repeat: int,
               warmup: int, log=print) -> list[Result]:  # fmt: skip
    case.reference = OnnxRuntime().prepare(case, threads).run()
    results, runners = [], {}
    for contender in contenders:
        result, prepared = _prepare_checked(case, contender, threads)
        log(f"{case.name} / {contender.name}: {result.status} {result.note}".rstrip())
        results.append(result)
        if prepared is not None:
            runners[contender.name] = prepared
    timings = alternate(runners, repeat, warmup)
    for result in results:
        result.latency = timings.get(result.contender)
    return results


def _prepare_checked(case, contender, threads) -> tuple[Result, Prepared | None]:
    result = Result(case.name, contender.name, "unavailable", flops=case.flops)
    reason = contender.unavailable(case)
    if reason:
        result.note = reason
        return result, None
    try:
        prepared = contender.prepare(case, threads)
        outputs = prepared.run()
    except Exception as err:  # noqa: BLE001 - a contender failing is a result, not a crash
        result.status, result.note = "failed", f"{type(err).__name__}: {_first_line(err)}"
        return result, None
    result.compile_seconds, result.artifact_bytes = (
        prepared.compile_seconds,
        prepared.artifact_bytes,
    )
    error = _worst_error(outputs, case.reference)
    if contender.min_cosine is not None:  # int8: judged on direction, its error reported
        similarity = _worst_cosine(outputs, case.reference)
        result.note = f"cosine {similarity:.5f}, error {error:.2g}"
        if similarity < contender.min_cosine:
            result.status = "mismatch"
            result.note = f"cosine {similarity:.5f} < {contender.min_cosine}, error {error:.2g}"
            return result, None
    elif error > contender.tolerance:
        result.status, result.note = (
            "mismatch",
            f"error {error:.3g} > tolerance {contender.tolerance}",
        )
        return result, None
    result.status = "ok"
    result.note = result.note or f"error {error:.2g}"
    return result, prepared


def _worst_cosine(outputs, reference) -> float:
    if len(outputs) != len(reference):
        return -1.0
    return min(cosine(np.asarray(a), e) for a, e in zip(outputs, reference, strict=True))


def _worst_error(outputs, reference) -> float:
    if len(outputs) != len(reference):
        return float("inf")
    return max(max_relative_error(a, e) for a, e in zip(outputs, reference, strict=True))


def _first_line(err: Exception) -> str:
    return first_line(err)[:200]


# Thread pools (TVM's and ONNX Runtime's) spin-wait for a while after a run and steal the cores
# of whoever runs next: measured on the ResNet 3x3 conv, tvmopt right after ONNX Runtime ran 3x
# slower than alone. So contenders take turns in blocks of back-to-back runs, and each block
# starts once the previous contender's threads have gone to sleep, with untimed runs until this
# contender's threads are awake and its data is back in cache.
SETTLE_SECONDS = 0.2
REWARM_SECONDS = 0.02
BLOCK = 5


def alternate(runners: dict[str, Prepared], repeat: int, warmup: int) -> dict[str, Latency]:
    """Warm each runner up, then time `repeat` runs of each in blocks of up to BLOCK, rotating
    who goes first from one round of blocks to the next."""
    names = list(runners)
    for name in names:
        for _ in range(warmup):
            runners[name].run()
    samples = {name: [] for name in names}
    for round_index, start in enumerate(range(0, repeat, BLOCK)):
        shift = round_index % max(len(names), 1)
        for name in names[shift:] + names[:shift]:
            samples[name] += _settled_block_ms(runners[name], min(BLOCK, repeat - start))
    return {name: Latency(tuple(values)) for name, values in samples.items()}


def _settled_block_ms(runner: Prepared, count: int) -> list[float]:
    time.sleep(SETTLE_SECONDS)
    rewarm_until = time.perf_counter() + REWARM_SECONDS
    runner.run()  # untimed, at least once
    while time.perf_counter() < rewarm_until:
        runner.run()
    times = []
    for _ in range(count):
        start = time.perf_counter()
        runner.run()
        times.append((time.perf_counter() - start) * 1e3)
    return times
