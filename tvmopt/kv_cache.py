"""How a compiled decoder keeps its KV cache: `concat` (each step takes the past and returns
past + new as new tensors: ONNX's own contract) or `in-place` (a preallocated cache per past
input, written at the current position: passes/kv_cache_in_place.py). `auto` takes in-place
where the graph allows it and the past dim is bounded.

In place, the library takes each past_* input as a cache (batch, heads, capacity, head_dim),
capacity the past dim's upper bound + 1, plus `past_length` (int64, (1,)): the rows already
filled. It writes the seq new rows at past_length.. and returns the caches as present_*: the
same buffers. The metadata record `kv_cache` says so; tvmopt.generate reads it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .errors import InputError, OptionError
from .frontend.signature import TensorSpec

MODES = ("concat", "in-place", "auto")
KV_CACHE_RECORD = "kv_cache"
IDS = "input_ids"  # the new tokens: as many cache rows are written
POSITION = "past_length"  # the input that says how many rows of the caches are filled


@dataclasses.dataclass(frozen=True)
class CacheContract:
    """The module and inputs a compile goes on with, and the metadata record (empty: concat)."""

    module: object
    inputs: tuple
    record: dict


def check_mode(kv_cache: str) -> None:
    if kv_cache not in MODES:
        raise OptionError(f"kv_cache must be one of {', '.join(MODES)}, got {kv_cache!r}")


def contract(mod, inputs, ranges, kv_cache: str) -> CacheContract:
    """The in-place rewrite of `mod` where `kv_cache` asks for it and the model allows it."""
    check_mode(kv_cache)
    unchanged = CacheContract(mod, tuple(inputs), {})
    if kv_cache == "concat":
        return unchanged
    refusal = _refusal(inputs, ranges)
    from .passes import kv_cache_in_place  # imports tvm: not at the CLI's start

    capacity = _capacity(inputs, ranges) if not refusal else None
    rewritten = kv_cache_in_place.rewrite(mod, capacity, position=POSITION) if capacity else None
    if rewritten is None and kv_cache == "in-place":
        raise OptionError("kv_cache='in-place' needs " + (refusal or _PATTERN))
    if rewritten is None:
        return unchanged
    specs = tuple(_as_cache(spec, rewritten) for spec in inputs)
    return CacheContract(rewritten.module, (*specs, TensorSpec(POSITION, (1,), "int64")),
                         {KV_CACHE_RECORD: rewritten.record()})  # fmt: skip


_PATTERN = ("a decoder whose past_* inputs (batch, heads, past, head_dim) are used only by a "
            "Concat along axis 2 (tvmopt.benchmark.nets.gpt2's form)")  # fmt: skip


def _past_inputs(inputs) -> list:
    return [spec for spec in inputs if spec.name.startswith("past_") and len(spec.shape) == 4]


def _refusal(inputs, ranges) -> str | None:
    """Why the cache cannot be in place, from the signature and dims alone; None if it can."""
    pasts = _past_inputs(inputs)
    dims = {spec.shape[2] for spec in pasts}
    if len(dims) != 1 or not isinstance(next(iter(dims)), str):
        return _PATTERN
    dim = next(iter(dims))
    bound = ranges.get(dim)
    if bound is None or bound.lo != 0 or bound.hi is None:
        return f"the past dim bounded from 0 (--dim {dim}=0..N): N + 1 is the cache's capacity"
    return None


def _capacity(inputs, ranges) -> int:
    return ranges[_past_inputs(inputs)[0].shape[2]].hi + 1


def _as_cache(spec: TensorSpec, rewritten) -> TensorSpec:
    if spec.name not in rewritten.caches:
        return spec
    batch, heads, _, width = spec.shape
    return TensorSpec(spec.name, (batch, heads, rewritten.capacity, width), spec.dtype)


def record_of(metadata) -> dict | None:
    """The library's in-place cache record, None for the concat contract."""
    return metadata.extra.get(KV_CACHE_RECORD)


def check_run(record: dict, inputs, arrays) -> None:
    """An InputError naming the limit for a run whose new tokens would not fit the caches
    (the write kernel's own check stops it too, as a RuntimeError from inside the VM)."""
    by_name = {spec.name: array for spec, array in zip(inputs, arrays, strict=True)}
    filled = int(np.asarray(by_name[record["position"]]).reshape(-1)[0])
    new = by_name[IDS].shape[1] if IDS in by_name else 1
    capacity = record["capacity"]
    if filled < 0 or filled + new > capacity:
        raise InputError(f"{record['position']} = {filled} with {new} new token(s) does not fit "
                         f"the KV cache's {capacity} rows: give 0..{capacity - new}")


def describe(record: dict) -> str:
    return f"KV cache: in place, capacity {record['capacity']}"
