"""Attention reads an in-place KV cache's filled rows where they lie (passes/kv_cache_in_place.py):
a matmul whose B is the first n rows of a tensor becomes one kernel that reads that tensor.

    matmul(q, permute_dims(strided_slice(cache, [2], [0], [n]), axes))
        -> NT_matmul(q, cache): n columns
    matmul(p, strided_slice(cache, [2], [0], [n]))  -> matmul(p, cache): depth n

TVM's FuseOps does not fuse an injective producer into a matmul, so each slice would run as a
kernel of its own, copying the n rows the concat of the old contract copied. The kernels keep the
block names the Matmul rule schedules (rule_matmul.py). float32, same-rank operands, the slice
along B's row axis (-2 of the slice) from 0 with step 1. Runs right before TransposeIntoMatmul
(which would fold the transpose and leave the slice), from -O2.
"""

from __future__ import annotations

from tvm import relax, te
from tvm.relax.expr_functor import PyExprMutator, mutator

from ..._tvm import tvm
from ...passes.consts import dtype
from ...passes.rewrite import is_primitive
from ...passes.spans import spanned
from .transposed_matmul import KERNEL as NT_KERNEL
from .transposed_matmul import nt_matmul

MATMUL, PERMUTE = tvm.ir.Op.get("relax.matmul"), tvm.ir.Op.get("relax.permute_dims")
SLICE = tvm.ir.Op.get("relax.strided_slice")


def leading_rows(slice_call):
    """n when `slice_call` is strided_slice(x, [rank - 2], [0], [n]) with unit stride, else None."""
    if not (isinstance(slice_call, relax.Call) and slice_call.op == SLICE):
        return None
    rank = len(slice_call.ty.shape)
    axes, begin, end = (slice_call.args[i].fields for i in (1, 2, 3))
    strided = len(slice_call.args) > 4 and any(int(s) != 1 for s in slice_call.args[4].fields)
    if len(axes) != 1 or int(axes[0]) % rank != rank - 2 or strided:
        return None
    zero = isinstance(begin[0], tvm.tirx.IntImm) and int(begin[0]) == 0
    # the slice's type, not its `end` argument: the type's dims are the function's own vars
    return slice_call.ty.shape[rank - 2] if zero and end else None


def nn_matmul_rows(a: te.Tensor, b: te.Tensor, depth) -> te.Tensor:
    """a @ b[..., :depth, :]: b's rows past `depth` never read."""
    *batch, rows, _ = a.shape
    k = te.reduce_axis((0, depth), name="k")
    return te.compute((*batch, rows, b.shape[-1]),
                      lambda *i: te.sum(a[(*i[:-1], k)] * b[(*i[:-2], k, i[-1])], axis=k),
                      name="matmul")  # fmt: skip


@mutator
class _CacheRowsIntoMatmul(PyExprMutator):
    def visit_call_(self, call):
        call = self.visit_expr_post_order(call)
        if call.op != MATMUL or call.attrs.out_dtype not in (None, "float32"):
            return call
        a, b = call.args[0], self._bound(call.args[1])
        if dtype(a) != "float32" or len(a.ty.shape) != len(call.ty.shape):
            return call
        if isinstance(b, relax.Call) and b.op == PERMUTE and b.attrs.axes is not None:
            return self._transposed(call, a, b)
        rows = leading_rows(b)
        if rows is None or dtype(b.args[0]) != "float32" or len(b.ty.shape) != len(a.ty.shape):
            return call
        # rows goes as an argument: call_te renames the dims in it as in the tensors' shapes
        fused = self.builder_.call_te(nn_matmul_rows, a, b.args[0], rows,
                                      primfunc_name_hint="matmul")  # fmt: skip
        return spanned(fused, call.span)

    def _transposed(self, call, a, transpose):
        source = self._bound(transpose.args[0])
        rows, axes = leading_rows(source), [int(axis) for axis in transpose.attrs.axes]
        rank = len(axes)
        if rows is None or rank != len(a.ty.shape) or axes[-2] != rank - 1 or axes[-1] != rank - 2:
            return call
        if dtype(source.args[0]) != "float32":
            return call
        fused = self.builder_.call_te(lambda x, y, n: nt_matmul(x, y, axes, n), a, source.args[0],
                                      rows, primfunc_name_hint=NT_KERNEL)  # fmt: skip
        return spanned(fused, call.span)

    def _bound(self, expr):
        return self.lookup_binding(expr) if isinstance(expr, relax.Var) else expr


@tvm.transform.module_pass(opt_level=0, name="tvmopt.CacheRowsIntoMatmul")
def cache_rows_into_matmul(mod, ctx):
    folder = _CacheRowsIntoMatmul(mod)
    for gvar, func in mod.functions.items():
        if isinstance(func, relax.Function) and not is_primitive(func):
            folder.builder_.update_func(gvar, folder.visit_expr(func))
    return relax.transform.DeadCodeElimination()(folder.builder_.get())
