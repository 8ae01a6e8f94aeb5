"""Padding a run up to a bucket (buckets.py): a sequence of 60 tokens runs in the static
function of the 64-token bucket, its inputs padded with zeros, its outputs cut back to 60.

That is exact only where the model masks the padded positions: BERT-like encoders do, through
their attention mask (a padded key gets no attention weight, a padded token's own output is
cut away). tvmopt cannot tell that from the graph, so padding is asked for by naming the mask
input (`bucket_padding="attention_mask"`), and the compile checks it: a run one below a bucket,
padded, must give the symbolic function's outputs, else the compile is refused. A run pads only
where the bucket holds at most PAD_LIMIT times its elements; others take the symbolic function.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .buckets import BUCKETS_RECORD
from .errors import OptionError
from .frontend.signature import TensorSpec

PADDING_RECORD = "bucket_padding"  # the metadata's key: {"mask": input name, "limit": ratio}
PAD_LIMIT = 1.25  # a bucket 25% larger still beats the symbolic kernels (dynamic_dims.md)


@dataclass(frozen=True)
class PaddedRun:
    """A run's bucket: its function, and each symbolic dim's (run size, bucket size)."""

    function: str
    sizes: Mapping[str, tuple[int, int]]


def check_mask(mask: str | None, specs: Sequence[TensorSpec], buckets: list) -> None:
    if mask is None:
        return
    if not buckets:
        raise OptionError("bucket padding pads runs up to buckets: give buckets too")
    if mask not in {spec.name for spec in specs}:
        names = ", ".join(spec.name for spec in specs)
        raise OptionError(f"bucket padding names the mask input '{mask}', which the model does "
                          f"not have; its inputs: {names}")  # fmt: skip


def run_dims(specs: Sequence[TensorSpec], shapes) -> dict[str, int]:
    """Each symbolic dim's size in a run on inputs of `shapes` (signature order)."""
    dims = {}
    for spec, shape in zip(specs, shapes, strict=True):
        for dim, size in zip(spec.shape, shape, strict=True):
            if isinstance(dim, str):
                dims[dim] = int(size)
    return dims


def choose(records: Sequence[dict], dims: Mapping[str, int], limit: float) -> PaddedRun | None:
    """The smallest bucket at least as large as the run in every dim, holding at most `limit`
    times its elements; None where there is none."""
    fits = [r for r in records
            if all(dims.get(name, 0) <= size for name, size in r["dims"].items())]  # fmt: skip
    if not fits:
        return None
    best = min(fits, key=lambda r: _volume(r["dims"].values()))
    if _volume(best["dims"].values()) > limit * _volume(dims[name] for name in best["dims"]):
        return None
    return PaddedRun(best["function"], {n: (dims[n], s) for n, s in best["dims"].items()})


def _volume(sizes) -> int:
    return int(np.prod([max(size, 1) for size in sizes]))


def pad(arrays: Sequence[np.ndarray], specs: Sequence[TensorSpec], run: PaddedRun) -> list:
    """Each input zero-padded at the end of every dim the bucket enlarges."""
    return [_padded(array, spec, run) for array, spec in zip(arrays, specs, strict=True)]


def _padded(array: np.ndarray, spec: TensorSpec, run: PaddedRun) -> np.ndarray:
    widths = [(0, run.sizes[d][1] - run.sizes[d][0]) if d in run.sizes else (0, 0)
              for d in spec.shape]  # fmt: skip
    if not any(after for _, after in widths):
        return array
    return np.pad(array, widths)


def unpad(outputs: Sequence[np.ndarray], specs: Sequence[TensorSpec], run: PaddedRun) -> list:
    """Each output cut back to the run's size in every dim the bucket enlarged."""
    return [_cut(output, spec, run) for output, spec in zip(outputs, specs, strict=True)]


def _cut(output: np.ndarray, spec: TensorSpec, run: PaddedRun) -> np.ndarray:
    index = tuple(slice(0, run.sizes[d][0]) if d in run.sizes else slice(None)
                  for d in spec.shape)  # fmt: skip
    return output[index]


def check(compiled, mask: str) -> None:
    """Refuse (OptionError) padding that changes the outputs: a run one below a bucket in its
    dims larger than 1, `mask` all ones, padded, against the symbolic function's outputs."""
    from .inputs import random_inputs

    dims = _probe(compiled.metadata.extra[BUCKETS_RECORD], compiled.metadata.dims,
                  compiled.metadata.extra[PADDING_RECORD]["limit"])  # fmt: skip
    if dims is None:  # no run pads
        return
    feeds = random_inputs(compiled.inputs, seed=0, sizes=dims)
    feeds[mask] = np.ones_like(feeds[mask])
    expected, padded = compiled.run_symbolic(feeds), compiled.run(feeds)
    for name, reference in expected.items():
        error = _relative_error(padded[name], reference)
        if error > PADDING_TOLERANCE:
            sizes = ", ".join(f"{n}={s}" for n, s in dims.items())
            raise OptionError(f"padding to a bucket changes output '{name}' (relative error "
                              f"{error:.2g} at {sizes}): the model does not mask the padded "
                              f"positions through '{mask}'; leave out bucket padding")  # fmt: skip


PADDING_TOLERANCE = 1e-3  # static and symbolic kernels sum in other orders: 1e-6 apart


def _relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    if actual.shape != expected.shape:
        return float("inf")
    scale = max(float(np.abs(expected).max(initial=0.0)), 1e-6)
    return float(np.abs(actual.astype(np.float64) - expected).max(initial=0.0)) / scale


def _probe(records: Sequence[dict], ranges: Mapping, limit: float) -> dict[str, int] | None:
    """The smallest run, one below a bucket in its dims larger than 1 and inside the ranges,
    that pads up to that bucket; None where no run pads."""
    for record in sorted(records, key=lambda r: _volume(r["dims"].values())):
        dims = {name: size - 1 if size > 1 else size for name, size in record["dims"].items()}
        inside = all(ranges[name][0] <= size for name, size in dims.items())
        chosen = choose(records, dims, limit)
        if dims != record["dims"] and inside and chosen and chosen.function == record["function"]:
            return dims
    return None
