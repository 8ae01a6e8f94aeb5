"""A fused function's symbolic-dim parameters become shape parameters:

    fused_f(past: T.int64, tir_vars: R.Shape([seq]))    called as fused_f(past, R.shape([seq]))
        -> fused_f(dims_past: R.Shape([past]), tir_vars: R.Shape([seq]))
                                                  called as fused_f(R.shape([past]), R.shape([seq]))

Run after FuseOps, before FuseTIR. A dim read off a shape and used as a value (GPT-2's
positions, arange(seq) + past; shape_to_tensor of a dim) reaches FuseOps as a symbolic
scalar, which becomes a parameter of the fused function. FuseTIR's RemoveUnusedParameters then
finds `past` in the body's shapes, does not count that scalar as defining it, and adds a shape
parameter that defines it a second time: RenewDefs fails ("VarRemapGet(source) == nullptr").
Passed as a shape, the dim has one definition, the form FuseOps gives the dims it finds itself.
"""

from __future__ import annotations

from tvm import relax
from tvm.relax.expr_functor import PyExprMutator, mutator

from .._tvm import tvm
from .rewrite import is_primitive


def _dim_params(func) -> list[int]:
    return [i for i, param in enumerate(func.params) if tvm.ir.is_prim_var(param)]


def _with_shape_params(func, positions: list[int]):
    params = list(func.params)
    for i in positions:
        dim = params[i]
        params[i] = relax.Var(f"dims_{dim.name}", relax.ShapeExpr([dim]).ty)
    return relax.Function(params, func.body, func.ret_ty, func.is_pure, func.attrs, func.span)


@mutator
class _CallsPassingShapes(PyExprMutator):
    def __init__(self, changed: dict, mod):
        super().__init__(mod)
        self.changed = changed  # old global var -> (new global var, the positions taking shapes)

    def visit_call_(self, call):
        if not isinstance(call.op, tvm.ir.GlobalVar) or call.op not in self.changed:
            return self.visit_expr_post_order(call)
        # a fused call's arguments are variables and dims, with nothing to visit in them
        callee, positions = self.changed[call.op]
        args = [relax.ShapeExpr([a]) if i in positions else a for i, a in enumerate(call.args)]
        return relax.Call(callee, args, call.attrs, call.ty_args, call.span)


@tvm.transform.module_pass(opt_level=0, name="tvmopt.DimParamsAsShapes")
def dim_params_as_shapes(mod, ctx):
    changed = {
        global_var: _dim_params(func) for global_var, func in mod.functions.items()
        if isinstance(func, relax.Function) and is_primitive(func) and _dim_params(func)
    }  # fmt: skip
    if not changed:
        return mod
    # new global vars, which the builder types: the old ones keep their old signatures' type,
    # which calls are checked against
    kept = {gv: f for gv, f in mod.functions.items() if gv not in changed}
    builder = relax.BlockBuilder(tvm.IRModule(kept, attrs=mod.attrs, global_infos=mod.global_infos))
    renamed = {
        gv: (builder.add_func(_with_shape_params(mod[gv], positions), gv.name_hint), positions)
        for gv, positions in changed.items()
    }  # fmt: skip
    result = builder.get()
    callers = _CallsPassingShapes(renamed, result)
    for global_var, func in list(result.functions.items()):
        if isinstance(func, relax.Function) and not is_primitive(func):
            result[global_var] = callers.visit_expr(func)
    return result
