"""Buckets: static variants of a symbolic model inside its one library, chosen at run time.

A library compiled with symbolic dims (dims.py) runs every size in their ranges through kernels
scheduled for no size in particular; where a size is known, a static kernel is faster (a
MiniLM-sized encoder at 16 tokens: 4x). `buckets={"sequence": [16, 64, 128]}` (CLI: `--bucket
sequence=16,64,128`) compiles, beside the symbolic `main`, one function per size, every input
pinned to it (`main__sequence16`): the graph and kernels of a library compiled for that shape.
A run whose dims equal a bucket's takes its function; any other size in the ranges takes the
symbolic `main` (as the C++ runner always does). Listed dims combine (every batch size with
every length); a symbolic dim a bucket does not list is pinned to the lower end of its range,
or 1 where the range starts at 0. The buckets go into the library's metadata (`tvmopt inspect`).

Sizes are matched exactly unless the compile names the model's mask input (`bucket_padding`):
padding a run up to the next bucket changes a model's outputs unless the model masks the padded
positions, which tvmopt cannot tell from the graph, so it checks it (bucket_padding.py).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .errors import OptionError
from .frontend.signature import TensorSpec

BUCKETS_RECORD = "buckets"  # the metadata's key: [{"function": ..., "dims": {name: size}}]


@dataclass(frozen=True)
class Bucket:
    """One static variant: every symbolic dim's size, and the VM function compiled for it."""

    dims: tuple[tuple[str, int], ...]  # (name, size), in the inputs' order of dims

    @property
    def function(self) -> str:
        return "main__" + "_".join(f"{_identifier(name)}{size}" for name, size in self.dims)

    def input_shapes(self, specs: Sequence[TensorSpec]) -> dict[str, tuple[int, ...]]:
        """Every input's shape with this bucket's sizes in place of its named dims."""
        sizes = dict(self.dims)
        return {spec.name: tuple(sizes.get(d, d) for d in spec.shape) for spec in specs}

    def to_dict(self) -> dict:
        return {"function": self.function, "dims": dict(self.dims)}


def parse_bucket(text: str) -> tuple[str, list[int]]:
    """'NAME=S1,S2,...' as (NAME, [S1, S2, ...]); OptionError otherwise."""
    name, sep, sizes = text.partition("=")
    try:
        values = [int(size) for size in sizes.split(",")]
    except ValueError:
        values = []
    if not sep or not name or not values:
        raise OptionError(f"a bucket is NAME=SIZE,SIZE,... such as sequence=16,64,128, "
                          f"got {text!r}")  # fmt: skip
    return name, values


def resolve_buckets(declared: Mapping | None, ranges: Mapping) -> list[Bucket]:
    """The buckets of `declared` (dim name -> sizes) over the symbolic dims' `ranges` (their
    DimRanges, dims.resolve): every combination of the listed sizes, each checked in range."""
    if not declared:
        return []
    for name in declared:
        if name not in ranges:
            known = ", ".join(ranges) or "none: every input shape is static"
            raise OptionError(f"a bucket names '{name}', which no input has; symbolic dims: "
                              f"{known}")  # fmt: skip
    choices = [_sizes(name, declared.get(name), allowed) for name, allowed in ranges.items()]
    return [Bucket(tuple(zip(ranges, combination, strict=True)))
            for combination in itertools.product(*choices)]  # fmt: skip


def _sizes(name: str, listed, allowed) -> list[int]:
    if listed is None:  # not bucketed: pinned to the smallest size it may take
        return [max(allowed.lo, 1)]
    sizes = sorted({int(size) for size in listed})
    for size in sizes:
        if size < 1 or not allowed.holds(size):
            raise OptionError(f"bucket {name}={size} is outside {name}'s range "
                              f"{allowed.describe()}")  # fmt: skip
    return sizes


def function_by_shapes(specs: Sequence[TensorSpec], records: Sequence[dict]) -> dict:
    """The metadata's bucket records as {(each input's shape, ...): function}, which a run
    looks its inputs' shapes up in."""
    table = {}
    for record in records:
        bucket = Bucket(tuple(record["dims"].items()))
        shapes = bucket.input_shapes(specs)
        table[tuple(shapes[spec.name] for spec in specs)] = record["function"]
    return table


def _identifier(name: str) -> str:
    return re.sub(r"\W", "_", name)
