"""Counts that show what the passes did to `main`: its bindings, and its kernel launches.

A launch is a call that computes: a high-level op (before legalization, each would become a
kernel), a call_tir, or a call of a fused or TIR function. Memory and VM bookkeeping and
packed runtime builtins are not launches.
"""

from __future__ import annotations

from tvm.relax.expr_functor import PyExprVisitor, visitor

from .._tvm import tvm

BOOKKEEPING_PREFIXES = ("relax.vm.", "relax.memory.", "relax.builtin.", "relax.null_value",
                        "relax.call_builtin_with_ctx", "relax.shape_of")  # fmt: skip


@visitor
class _Counter(PyExprVisitor):
    def __init__(self):
        self.bindings = 0
        self.launches = 0

    def visit_var_binding_(self, binding):
        self.bindings += 1
        if isinstance(binding.value, tvm.relax.Call) and is_launch(binding.value):
            self.launches += 1
        super().visit_var_binding_(binding)


def is_launch(call) -> bool:
    op = call.op
    if isinstance(op, tvm.ir.GlobalVar):
        return True
    return isinstance(op, tvm.ir.Op) and not op.name.startswith(BOOKKEEPING_PREFIXES)


def count(mod) -> tuple[int, int]:
    """(bindings, kernel launches) in `main`."""
    counter = _Counter()
    counter.visit_expr(mod["main"])
    return counter.bindings, counter.launches
