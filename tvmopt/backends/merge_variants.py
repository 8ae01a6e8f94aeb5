"""Several graph-optimized modules, each with its own `main`, merged into one for lowering: the
symbolic model's `main` and its static buckets' (buckets.py), each renamed to its function.

    {"main": symbolic}, {"main": static 16, "fused_softmax": ...}
        -> {"main": symbolic, "main__sequence16": static 16, "main__sequence16__fused_softmax"}

Every other global of a variant (the graph passes' fused Relax functions) is renamed under the
variant's prefix, so that kernels of the same name and different shapes do not collide. Equal
constants (the weights, packed alike for every shape) become one Relax constant, which the VM's
constant pool then holds once (its ExecBuilder deduplicates by object): a MiniLM-L6 library with
six buckets stays the size of one, not seven.
"""

from __future__ import annotations

import hashlib

from tvm import relax

from .._tvm import tvm


def merged(main: tvm.IRModule, variants: dict[str, tvm.IRModule]) -> tvm.IRModule:
    """`main` with each of `variants`' (function name -> module) `main` under that name."""
    functions = dict(main.functions_items())
    for name, module in variants.items():
        functions.update(_renamed(module, name))
    merged_module = tvm.IRModule(functions, attrs=main.attrs)
    return _shared_constants(merged_module)


def _renamed(module: tvm.IRModule, name: str) -> dict:
    """`module`'s globals under `name`: main as `name`, the rest as `name__global`."""
    renames = {var: _global(name if var.name_hint == "main" else f"{name}__{var.name_hint}",
                            var) for var in module.get_global_vars()}  # fmt: skip
    renamer = _GlobalRenamer(renames)
    functions = {}
    for var, func in module.functions_items():
        if isinstance(func, relax.Function):
            func = renamer.visit_expr(func)
        if func.attrs is not None and "global_symbol" in func.attrs:
            func = func.with_attr("global_symbol", renames[var].name_hint)
        functions[renames[var]] = func
    return functions


def _global(name: str, like):
    """A GlobalVar named `name` of `like`'s type, as the normalizer requires of a callee."""
    var = relax.GlobalVar(name)
    relax.expr._update_type(var, like.ty)  # noqa: SLF001 - as TVM's BlockBuilder does
    return var


@relax.expr_functor.mutator
class _GlobalRenamer(relax.PyExprMutator):
    def __init__(self, renames: dict):
        super().__init__()
        self.renames = {var.name_hint: new for var, new in renames.items()}

    def visit_global_var_(self, op):
        return self.renames.get(op.name_hint, op)


@relax.expr_functor.mutator
class _ConstantSharer(relax.PyExprMutator):
    """Every constant replaced by the first one of equal dtype, shape and bytes."""

    def __init__(self, seen: dict):
        super().__init__()
        self.seen = seen

    def visit_generic_const_(self, op):
        data = op.value.numpy()
        key = (str(data.dtype), data.shape, hashlib.blake2b(data.tobytes()).digest())
        return self.seen.setdefault(key, op)


def _shared_constants(module: tvm.IRModule) -> tvm.IRModule:
    sharer = _ConstantSharer({})
    functions = {}
    for var, func in module.functions_items():
        if isinstance(func, relax.Function):
            func = sharer.visit_expr(func)
        functions[var] = func
    return tvm.IRModule(functions, attrs=module.attrs)
