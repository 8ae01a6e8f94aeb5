"""Fuse a blocked weight's dequantization into its matmul (kernel_weight_only.py).

    matmul(x: [..., K] float32, call_tir(dequantize_blocks, (levels, scales, zeros)))
        -> reshape(call_tir(weight_only_matmul, (reshape(x, [M, K]), packed, scales, zeros)),
                   [..., N])        (cut to N columns first where they do not fill whole panels)

The levels are packed at compile time, eight int4 per 32-bit word, in panels of the target's vectors
(cpu.py's lanes): the library holds the small weight, and nothing float32 of it is ever made.
Where the weight came from does not matter: our weight-only quantization
(passes/quantize/quantize_weights.py) or an imported MatMulNBits or blocked DequantizeLinear.
Runs in -O3's CPU passes, before pack_matmul_weights; x's leading dims fold into M, which may
be symbolic (a sequence length). Blocks that allow int8 activations (quantize="int4-weights-a8",
MatMulNBits at accuracy level 4) run kernel_weight_only_q8.py's integer kernel instead, where the
target has an int8 dot product for them.
"""

from __future__ import annotations

import functools
import operator
from functools import partial

from tvm import relax
from tvm.relax.expr_functor import PyExprMutator, mutator

from ..._tvm import tvm
from ...passes.consts import const, dtype
from ...passes.quantize.weight_blocks import BLOCK_ATTR, blocks_of
from ...passes.spans import spanned
from . import kernel_weight_only_q8 as q8
from .kernel_weight_only import pack_levels, pad_columns, padded_width, weight_only_matmul


@mutator
class _FuseWeightOnly(PyExprMutator):
    def __init__(self, mod, lanes: int, cpu=None):
        super().__init__(mod)
        self.mod, self.lanes, self.cpu = mod, lanes, cpu

    def visit_call_(self, call):
        call = self.visit_expr_post_order(call)
        if call.op != tvm.ir.Op.get("relax.matmul") or dtype(call.args[0]) != "float32":
            return call
        weight = call.args[1]
        if isinstance(weight, relax.Var):
            weight = self.lookup_binding(weight)
        blocks = blocks_of(self.mod, weight)
        x_shape = _dims(call.args[0])
        if blocks is None or x_shape is None:
            return call
        return spanned(self._fused(call.args[0], x_shape, blocks, call.span), call.span)

    def _fused(self, x, x_shape, blocks, span):
        depth, columns = blocks.levels.shape
        rows = functools.reduce(operator.mul, x_shape[:-1], 1)
        flat = self.builder_.emit(relax.op.reshape(x, (rows, depth)))
        step = self._int8_step(blocks)
        if step is None:
            width = padded_width(columns, self.lanes, blocks.bits)
            fused = self._float_call(flat, blocks, width)
        else:
            vectors = q8.column_vectors(self.cpu)
            width = q8.padded_columns(columns, q8.task_width(step, vectors))
            fused = self._int8_call(flat, rows, blocks, step, vectors, width)
        out = self.builder_.emit(spanned(fused, span))  # the ONNX node, for run --profile
        if width != columns:
            out = self.builder_.emit(relax.op.strided_slice(out, [1], [0], [columns]))
        return relax.op.reshape(out, [*x_shape[:-1], columns])

    def _int8_step(self, blocks):
        """The int8 dot-product step for blocks that allow int8 activations, else None."""
        if not blocks.int8_activations or self.cpu is None:
            return None
        if blocks.group % q8.rows_per_step(blocks.bits):
            return None
        return q8.dot_step(self.cpu, blocks.bits)

    def _float_call(self, flat, blocks, width):
        kernel = partial(weight_only_matmul, bits=blocks.bits, lanes=self.lanes)
        return self.builder_.call_te(
            kernel, flat, const(pack_levels(blocks.levels, blocks.bits, self.lanes)),
            const(pad_columns(blocks.scales, width)), const(pad_columns(blocks.zeros, width)),
            primfunc_name_hint=f"weight_only_int{blocks.bits}_matmul",
        )  # fmt: skip

    def _int8_call(self, flat, rows, blocks, step, vectors, width):
        task = q8.task_width(step, vectors)
        depth, groups = len(blocks.levels), len(blocks.scales)
        kernel = q8.q8_matmul(depth, groups, width, blocks.bits, step, vectors)
        gvar = self.builder_.add_func(kernel, f"weight_only_int{blocks.bits}_q8_matmul")
        args = [flat, const(q8.pack_q8_levels(blocks.levels, blocks.bits, task)),
                const(q8.pack_q8_groups(blocks.scales, task)),
                const(q8.pack_q8_groups(blocks.zeros, task))]  # fmt: skip
        return relax.call_tir(gvar, args, relax.TensorType((rows, width), "float32"))


def _dequantizes(func) -> bool:
    return (
        isinstance(func, tvm.tirx.PrimFunc)
        and func.attrs is not None
        and (BLOCK_ATTR in func.attrs)
    )


def _dims(expr) -> list | None:
    """The dims of `expr`'s shape (ints or symbolic), or None where its rank is unknown."""
    shape = getattr(expr.ty, "shape", None)
    return list(shape.values) if shape is not None and hasattr(shape, "values") else None


def FuseWeightOnly(lanes: int = 16, cpu=None):  # noqa: N802 - named like TVM passes
    """The pass, for panels of the target's `lanes` float32 (cpu.py); `cpu` (cpu.CPU) sizes the
    int8-activation kernel, which runs only where it is given."""

    @tvm.transform.module_pass(opt_level=0, name="tvmopt.FuseWeightOnly")
    def fuse(mod, ctx):
        if not any(_dequantizes(func) for func in mod.functions.values()):
            return mod  # most models: not walked at all
        fuser = _FuseWeightOnly(mod, lanes, cpu)
        for gvar, func in mod.functions.items():
            if isinstance(func, relax.Function):
                fuser.builder_.update_func(gvar, fuser.visit_expr(func))
        return relax.transform.DeadCodeElimination()(fuser.builder_.get())

    return fuse
