"""The rule engine behind our declarative passes: a rule is a pattern and a rewrite; a pass is a
table of rules applied to a fixed point. A rewrite that declines returns None."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import tvm_ffi
from tvm import relax
from tvm.relax.dpl import CallPattern, DFPattern, rewrite_call

from .._tvm import tvm
from .spans import respanned, rewritten
from .uses import bindings

MAX_ROUNDS = 16


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: DFPattern
    rewrite: Callable  # (matched call, {pattern: expr}) -> new expr, or None to decline

    def apply(self, func):
        roots = {}  # each rewritten call (or its variable) -> the result's span (spans.py)

        def rewriter(expr, matches):
            # `expr` may be a variable bound to the match; the pattern's own entry is the call
            result = self.rewrite(matches.get(self.pattern, expr), matches)
            if result is None:
                return expr
            # what the result made comes from the calls the pattern's ops matched, not those
            # its wildcards did (which stay)
            ops = [pattern for pattern in matches if isinstance(pattern, CallPattern)]
            calls = [matches[op] for op in ops if isinstance(matches[op], relax.Call)]
            result = rewritten(result, calls)
            roots[expr] = result.span if isinstance(result, relax.Call) else None
            return result

        result = rewrite_call(self.pattern, rewriter, func)
        if not roots:  # nothing fired: no spans to mend, and no walk over the bindings
            return result
        bound_to = {value: var for var, value in bindings(func).items()}
        spans = {key if isinstance(key, relax.Var) else bound_to.get(key): span
                 for key, span in roots.items() if span is not None}  # fmt: skip
        return respanned(result, spans, set(bound_to.values()))


def apply_rules(func, rules: list[Rule]):
    """Apply every rule until none fires (or MAX_ROUNDS pass, which bounds rule cycles)."""
    for _ in range(MAX_ROUNDS):
        before = func
        for rule in rules:
            func = rule.apply(func)
        if tvm_ffi.structural_equal(before, func):
            break
    return func


def is_primitive(func) -> bool:
    """Fused kernels (Primitive functions) are left alone by graph-level passes."""
    attrs = func.attrs
    return attrs is not None and "Primitive" in attrs.keys() and int(attrs["Primitive"]) != 0


def rule_pass(name: str, rules: list[Rule]):
    """A Relax function pass that applies `rules` to every non-primitive function."""

    @tvm.relax.transform.function_pass(opt_level=0, name=name)
    def transform(func, mod, ctx):
        return func if is_primitive(func) else apply_rules(func, rules)

    return transform
