"""Clamp run-time gather indices instead of reading out of bounds.

    take(x, indices, mode="fast") -> take(x, indices, mode="clip")     (indices not a constant)

TVM imports ONNX Gather as take in "fast" mode, which trusts every index: an out-of-range token
id fed to an embedding reads past the table, garbage or a segfault in the user's process. ONNX
Runtime reports such an index as an error; a compiled library cannot raise, so it clamps. The
cost is one min/max per index. Constant indices are checked by the importer. Runs first in the
lowering of every opt level, -O0 included: safety does not depend on optimization.
"""

from __future__ import annotations

from tvm import relax
from tvm.relax.dpl import is_op, wildcard

from .consts import is_constant
from .rewrite import Rule, rule_pass

_x, _indices = wildcard(), wildcard()


def _clip(expr, m):
    if str(expr.attrs.mode) != "fast" or is_constant(m[_indices]):
        return None
    return relax.op.take(m[_x], m[_indices], axis=expr.attrs.axis, mode="clip")


RULES = [Rule("clip_take", is_op("relax.take")(_x, _indices), _clip)]

SafeIndexing = rule_pass("tvmopt.SafeIndexing", RULES)
