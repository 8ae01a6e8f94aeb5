"""Attention's K^T read in place: a matmul whose B is a transpose of a computed tensor becomes one
kernel that reads that tensor with the transpose in its indices.

    matmul(q, permute_dims(k, axes))  -> call_tir(NT_matmul, (q, k))
        where axes moves k's last (contiguous) axis to B's reduction axis (-2)

Q K^T in every attention (BERT's keys, a decoder's KV cache) transposes K first; TVM's FuseOps
does not fuse an injective producer into a matmul, so the transpose ran as a kernel of its own,
writing all of K once more (a GPT-2-small decode step at past 1023, Zen 4: 12.6 ms of 68 ms).
The Matmul rule (rule_matmul.py) schedules NT_matmul by copying each tile's K rows, transposed,
into a small buffer the tile then reads as its B. TVM's own FuseTransposeMatmul matches only a
swap of the last two axes and constant weights too; ours takes any permutation that makes k's
contiguous axis the reduction (BERT's `[0, 2, 3, 1]` from [batch, seq, heads, dim]), and leaves
constant weights to pack_matmul_weights. float32, same-rank operands with equal batch dims.
Runs right before LegalizeOps, from -O2.
"""

from __future__ import annotations

from tvm import relax, te
from tvm.relax.expr_functor import PyExprMutator, mutator
from tvm_ffi import structural_equal

from ..._tvm import tvm
from ...passes.consts import dtype
from ...passes.rewrite import is_primitive
from ...passes.spans import spanned

MATMUL, PERMUTE = tvm.ir.Op.get("relax.matmul"), tvm.ir.Op.get("relax.permute_dims")
KERNEL = "NT_matmul"  # the block name rule_matmul.py looks for


def nt_matmul(a: te.Tensor, b: te.Tensor, axes: list[int], columns=None) -> te.Tensor:
    """a @ permute_dims(b, axes), reading b in place: B[idx] = b[idx permuted back]; with
    `columns`, only b's first `columns` along that axis (an in-place KV cache's filled rows)."""
    *batch, rows, depth = a.shape
    columns = b.shape[axes[-1]] if columns is None else columns
    k = te.reduce_axis((0, depth), name="k")

    def product(*index):
        b_index = [None] * len(axes)
        for position, axis in enumerate(axes):
            b_index[axis] = (*index[:-2], k, index[-1])[position]
        return te.sum(a[(*index[:-1], k)] * b[tuple(b_index)], axis=k)

    return te.compute((*batch, rows, columns), product, name=KERNEL)


def folds(a, transpose) -> bool:
    """Whether `matmul(a, transpose)` qualifies: see the module docstring."""
    source = transpose.args[0]
    rank = len(transpose.attrs.axes) if transpose.attrs.axes is not None else 0
    if rank < 2 or isinstance(source, tvm.ir.GenericConst) or dtype(a) != "float32":
        return False
    axes = [int(axis) for axis in transpose.attrs.axes]
    a_shape, b_shape = _dims(a), _dims(transpose)
    if a_shape is None or b_shape is None or len(a_shape) != rank or dtype(source) != "float32":
        return False
    batch = zip(a_shape[:-2], b_shape[:-2], strict=True)
    same_batch = all(structural_equal(x, y) for x, y in batch)
    return same_batch and axes[-2] == rank - 1


def _dims(expr) -> list | None:
    shape = getattr(expr.ty, "shape", None)
    return list(shape.values) if shape is not None and hasattr(shape, "values") else None


@mutator
class _TransposeIntoMatmul(PyExprMutator):
    def visit_call_(self, call):
        call = self.visit_expr_post_order(call)
        if call.op != MATMUL or call.attrs.out_dtype not in (None, "float32"):
            return call
        transpose = call.args[1]
        if isinstance(transpose, relax.Var):
            transpose = self.lookup_binding(transpose)
        if not (isinstance(transpose, relax.Call) and transpose.op == PERMUTE):
            return call
        if not folds(call.args[0], transpose):
            return call
        axes = [int(axis) for axis in transpose.attrs.axes]
        fused = self.builder_.call_te(lambda a, b: nt_matmul(a, b, axes), call.args[0],
                                      transpose.args[0], primfunc_name_hint=KERNEL)  # fmt: skip
        return spanned(fused, call.span)


@tvm.transform.module_pass(opt_level=0, name="tvmopt.TransposeIntoMatmul")
def transpose_into_matmul(mod, ctx):
    folder = _TransposeIntoMatmul(mod)
    for gvar, func in mod.functions.items():
        if isinstance(func, relax.Function) and not is_primitive(func):
            folder.builder_.update_func(gvar, folder.visit_expr(func))
    return relax.transform.DeadCodeElimination()(folder.builder_.get())
