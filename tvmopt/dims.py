"""Symbolic dims: the ranges a compiled model's named dims (batch, sequence) may take at run.

A model exported with dynamic axes names its variable dims (`input_ids: int64[batch,sequence]`).
tvmopt compiles them symbolically: one library serves every size in each dim's declared range
(`--dim sequence=1..512`, `dims={"sequence": (1, 512)}`); a dim given no range takes any size
from 1 up. A declared range may start at 0, for a dim that may be empty: a decoder's KV cache
has no past on the prompt pass (`--dim past=0..1023`), and one library then serves the prompt
pass and every decode step. The ranges go into the library's metadata, and `check_sizes` holds
every run to them before the VM sees its inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .errors import InputError, OptionError
from .frontend.signature import TensorSpec


@dataclass(frozen=True)
class DimRange:
    """The sizes `lo` to `hi` (inclusive) one symbolic dim may take; `hi` None: no limit.
    `lo` 0 admits an empty dim (a KV cache's past); only a declared range starts there."""

    lo: int = 1
    hi: int | None = None

    def __post_init__(self):
        if self.lo < 0 or (self.hi is not None and self.hi < self.lo):
            raise OptionError(f"a dim's range must be 0 <= lo <= hi, got {self.describe()}")

    def holds(self, size: int) -> bool:
        return self.lo <= size and (self.hi is None or size <= self.hi)

    def describe(self) -> str:
        return f"{self.lo}..{'' if self.hi is None else self.hi}"

    def to_list(self) -> list:
        return [self.lo, self.hi]


def parse_range(text: str) -> DimRange:
    """'LO..HI', 'LO..' (no upper limit) or 'N' (one size); OptionError otherwise."""
    lo, sep, hi = text.partition("..")
    try:
        bounds = (int(lo), int(lo)) if not sep else (int(lo), int(hi) if hi else None)
    except ValueError:
        raise OptionError(f"a dim's range is LO..HI of whole numbers, such as 1..512, "
                          f"got {text!r}") from None  # fmt: skip
    return DimRange(*bounds)


def symbolic_dims(specs: Sequence[TensorSpec]) -> list[str]:
    """The names of the inputs' symbolic dims, in the order they first appear."""
    names = (dim for spec in specs for dim in spec.shape if isinstance(dim, str))
    return list(dict.fromkeys(names))


def resolve(specs: Sequence[TensorSpec], declared: Mapping | None) -> dict[str, DimRange]:
    """Every symbolic dim of `specs` with its range: the declared one, else 1 and up.

    `declared` maps dim names to a DimRange, a (lo, hi) pair or a 'LO..HI' string; a name no
    input has is an OptionError listing the ones they do have."""
    names = symbolic_dims(specs)
    for name in declared or {}:
        if name not in names:
            known = ", ".join(names) or "none: every input shape is static"
            raise OptionError(f"--dim names '{name}', which no input has; symbolic dims: {known}")
    ranges = {name: _as_range(value) for name, value in (declared or {}).items()}
    return {name: ranges.get(name, DimRange()) for name in names}


def _as_range(value) -> DimRange:
    if isinstance(value, DimRange):
        return value
    if isinstance(value, str):
        return parse_range(value)
    try:
        lo, hi = value
        lo, hi = int(lo), None if hi is None else int(hi)
    except (TypeError, ValueError):
        raise OptionError(f"a dim's range is (lo, hi) or 'LO..HI', got {value!r}") from None
    return DimRange(lo, hi)


def check_sizes(spec: TensorSpec, shape: tuple, ranges: Mapping, bound: dict) -> None:
    """`shape` fits `spec`: its static dims equal, its symbolic ones in their ranges and equal
    to what earlier inputs bound the same name to (`bound`, filled in as it goes)."""
    if len(shape) != len(spec.shape):
        raise InputError(f"input '{spec.name}' must have shape {_shown(spec.shape)}, got "
                         f"{tuple(shape)}")  # fmt: skip
    for axis, (dim, size) in enumerate(zip(spec.shape, shape, strict=True)):
        if isinstance(dim, int):
            if dim != size:
                raise InputError(f"input '{spec.name}' must have shape {_shown(spec.shape)}, "
                                 f"got {tuple(shape)}")  # fmt: skip
            continue
        _check_dim(spec.name, axis, dim, size, ranges.get(dim, DimRange()), bound)


def _check_dim(name: str, axis: int, dim: str, size: int, allowed: DimRange, bound: dict) -> None:
    if not allowed.holds(size):
        raise InputError(f"input '{name}' axis {axis} ({dim}) is {size}, outside the range "
                         f"{allowed.describe()} it was compiled for")  # fmt: skip
    seen = bound.setdefault(dim, (size, name))
    if seen[0] != size:
        raise InputError(f"input '{name}' axis {axis} ({dim}) is {size}, but input "
                         f"'{seen[1]}' has {dim} = {seen[0]}")  # fmt: skip


def _shown(shape: tuple) -> str:
    return str(tuple(shape)).replace("'", "")  # (batch, 16), as the static ones read


def with_dim_bounds(mod, ranges: Mapping[str, DimRange]):
    """`mod` whose main tells TVM the dims' bounds, as torch's importer does for its exported
    programs: StaticPlanBlockMemory then plans the intermediates for their largest size, once,
    instead of allocating each at every run."""
    lower = {name: dim.lo for name, dim in ranges.items()}
    upper = {name: dim.hi for name, dim in ranges.items() if dim.hi is not None}
    main = mod["main"]
    if lower:
        main = main.with_attr("tir_var_lower_bound", lower)
    if upper:
        main = main.with_attr("tir_var_upper_bound", upper)
    mod["main"] = main
    return mod
