"""Who reads what in `main`: the def-use facts the bias folding, requantization and the
kernels' ONNX nodes (passes/spans.py) rely on."""

from __future__ import annotations

from tvm import relax


def bindings(func: relax.Function) -> dict:
    """Var -> the value bound to it."""
    return {b.var: b.value for block in func.body.blocks for b in block.bindings}


def relax_functions(mod) -> list:
    """(global var, function) for each Relax function of `mod` with bindings."""
    return [
        (gvar, func)
        for gvar, func in mod.functions.items()
        if isinstance(func, relax.Function) and isinstance(func.body, relax.SeqExpr)
    ]


def op_name(expr) -> str | None:
    """The operator a call applies ("relax.add"), or None for anything else."""
    return getattr(expr.op, "name", None) if isinstance(expr, relax.Call) else None


def readers(func: relax.Function) -> dict:
    """Var -> every binding value (or the function's output) that reads it."""
    found: dict = {}
    values = [b.value for block in func.body.blocks for b in block.bindings]
    for expr in [*values, func.body.body]:
        for operand in operands(expr):
            found.setdefault(operand, []).append(expr)
    return found


def operands(expr) -> list:
    """The vars `expr` reads, also inside a tuple it takes as an argument: TVM imports ONNX's
    Min and Max of several inputs as a reduction over stack((a, b)), and Concat as
    concat((a, b)); missing those readers, requantization gave them a uint8 tensor."""
    if isinstance(expr, relax.Var):
        return [expr]
    if isinstance(expr, relax.Call):
        return [v for a in expr.args for v in operands(a)]
    if isinstance(expr, relax.Tuple):
        return [f for f in expr.fields if isinstance(f, relax.Var)]
    if isinstance(expr, relax.TupleGetItem):
        return operands(expr.tuple_value)
    return []
