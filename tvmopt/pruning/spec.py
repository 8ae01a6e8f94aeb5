"""What to prune and how: a frozen, self-validating spec.

Patterns are stated on the weight as the MatMul sees it, (K, N): K is the reduction axis (a
MatMul's B rows, a Conv's input channels x kernel taps), N the output axis (B's columns, a
Conv's output channels). A block RxC spans R rows along K and C columns along N.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import OptionError

SCOPES = ("layer", "global")
NORMS = ("l2", "l1")


@dataclass(frozen=True)
class Unstructured:
    """Each weight on its own: the smallest magnitudes go."""

    def describe(self) -> str:
        return "unstructured"


@dataclass(frozen=True)
class Block:
    """Blocks of `rows` (along K) x `cols` (along N), scored by their norm, zeroed whole."""

    rows: int
    cols: int

    def __post_init__(self):
        if self.rows < 1 or self.cols < 1 or self.rows * self.cols < 2:
            raise OptionError(f"a block needs positive sides and 2 or more weights, got "
                              f"{self.rows}x{self.cols}")  # fmt: skip

    def describe(self) -> str:
        return f"block {self.rows}x{self.cols}"


@dataclass(frozen=True)
class NM:
    """In every group of `m` consecutive weights along K, the `n` largest stay."""

    n: int
    m: int

    def __post_init__(self):
        if not 1 <= self.n < self.m:
            raise OptionError(f"N:M needs 1 <= N < M, got {self.n}:{self.m}")

    @property
    def sparsity(self) -> float:
        return 1 - self.n / self.m

    def describe(self) -> str:
        return f"{self.n}:{self.m}"


def parse_block(text: str) -> Block:
    """RxC as in `1x8` or `16x1`."""
    rows, sep, cols = text.lower().partition("x")
    if not sep or not rows.isdigit() or not cols.isdigit():
        raise OptionError(f"expected a block RxC such as 1x8 or 16x1, got {text!r}")
    return Block(int(rows), int(cols))


def parse_nm(text: str) -> NM:
    """N:M as in `2:4`."""
    n, sep, m = text.partition(":")
    if not sep or not n.isdigit() or not m.isdigit():
        raise OptionError(f"expected N:M such as 2:4, got {text!r}")
    return NM(int(n), int(m))


@dataclass(frozen=True)
class PruneSpec:
    """Sparsity in [0, 1) of each weight (scope layer) or of all together (scope global); blocks
    scored by their `norm`; `include`/`exclude` are fnmatch globs over weight and node names."""

    sparsity: float
    pattern: Unstructured | Block | NM = Unstructured()
    scope: str = "layer"
    norm: str = "l2"
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def __post_init__(self):
        if not (isinstance(self.sparsity, (int, float)) and 0 <= self.sparsity < 1):
            raise OptionError(f"sparsity must be in [0, 1), got {self.sparsity!r}")
        _check_choice("scope", self.scope, SCOPES)
        _check_choice("norm", self.norm, NORMS)


def _check_choice(what: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise OptionError(f"{what} must be one of {', '.join(allowed)}, got {value!r}")


def spec_from(sparsity=None, block=None, nm=None, **options) -> PruneSpec:
    """A PruneSpec from the API's loose arguments: block as "1x8" or a Block, nm as "2:4" or an
    NM. N:M fixes the sparsity (1 - N/M): a different `sparsity` with it is an OptionError."""
    if block is not None and nm is not None:
        raise OptionError("choose one of a block and N:M, not both")
    if nm is not None:
        pattern = parse_nm(nm) if isinstance(nm, str) else nm
        if sparsity is not None and not math.isclose(sparsity, pattern.sparsity):
            raise OptionError(f"N:M {pattern.describe()} prunes {pattern.sparsity:g} of each "
                              f"weight; drop sparsity={sparsity:g}")  # fmt: skip
        return PruneSpec(pattern.sparsity, pattern, **options)
    pattern = Unstructured() if block is None else block
    pattern = parse_block(pattern) if isinstance(pattern, str) else pattern
    return PruneSpec(0.5 if sparsity is None else sparsity, pattern, **options)
