"""Who reads what in `main`: the def-use facts the bias folding and requantization rely on."""

from __future__ import annotations

from tvm import relax


def bindings(func: relax.Function) -> dict:
    """Var -> the value bound to it."""
    return {b.var: b.value for block in func.body.blocks for b in block.bindings}


def op_name(expr) -> str | None:
    """The operator a call applies ("relax.add"), or None for anything else."""
    return getattr(expr.op, "name", None) if isinstance(expr, relax.Call) else None


def readers(func: relax.Function) -> dict:
    """Var -> every binding value (or the function's output) that reads it."""
    found: dict = {}
    values = [b.value for block in func.body.blocks for b in block.bindings]
    for expr in [*values, func.body.body]:
        for operand in _operands(expr):
            found.setdefault(operand, []).append(expr)
    return found


def _operands(expr) -> list:
    if isinstance(expr, relax.Var):
        return [expr]
    if isinstance(expr, relax.Call):
        return [a for a in expr.args if isinstance(a, relax.Var)]
    if isinstance(expr, relax.Tuple):
        return [f for f in expr.fields if isinstance(f, relax.Var)]
    if isinstance(expr, relax.TupleGetItem):
        return _operands(expr.tuple_value)
    return []
