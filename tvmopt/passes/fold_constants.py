"""Constant folding with numpy, under a size cap.

    op(constants...) -> constant          (ops in FOLDERS: arithmetic, layout, casts, concat)
    use of a variable bound to a constant -> the constant itself

Inlining constants into their uses is what lets later rules (`is_const()` patterns in
fold_scale_shift and fuse_epilogue) see weights, and folding layout ops on weights
(transposes of Gemm weights, reshapes of biases) means they are never computed at run time.
Generators may not grow a tensor by more than GROWTH_LIMIT_BYTES. Ops missing from the table
are left for TVM's FoldConstant after legalization. Runs after Simplify; see pipeline.py.
"""

from __future__ import annotations

import numpy as np
from tvm.relax.expr_functor import PyExprMutator, mutator

from .._tvm import tvm
from .consts import const, dtype, is_constant, static_shape, value
from .rewrite import is_primitive

GROWTH_LIMIT_BYTES = 16 << 20


def _to_output_shape(call, x):
    return np.reshape(x, static_shape(call))


def _permute(call, x):
    axes = call.attrs.axes
    return np.transpose(x, None if axes is None else [int(a) for a in axes])


def _concat(call, *arrays):
    return np.concatenate(arrays, axis=int(call.attrs.axis))


def _elementwise(fn):
    return lambda call, *arrays: fn(*arrays)


FOLDERS = {
    "relax.add": _elementwise(np.add),
    "relax.subtract": _elementwise(np.subtract),
    "relax.multiply": _elementwise(np.multiply),
    "relax.divide": _elementwise(np.divide),  # float only: see _foldable
    "relax.negative": _elementwise(np.negative),
    "relax.sqrt": _elementwise(np.sqrt),
    "relax.rsqrt": _elementwise(lambda x: 1 / np.sqrt(x)),
    "relax.exp": _elementwise(np.exp),
    "relax.power": _elementwise(np.power),
    "relax.reshape": _to_output_shape,
    "relax.squeeze": _to_output_shape,
    "relax.expand_dims": _to_output_shape,
    "relax.flatten": _to_output_shape,
    "relax.permute_dims": _permute,
    "relax.astype": lambda call, x: x,  # the cast to the call's dtype happens in _evaluate
    "relax.broadcast_to": lambda call, x: np.broadcast_to(x, static_shape(call)),
    "relax.concat": _concat,
}


BINARY_OPS = ("relax.add", "relax.subtract", "relax.multiply", "relax.divide", "relax.power")


def _operands(call) -> list | None:
    """The call's tensor operands as numpy arrays, or None unless all are constants."""
    if call.op.name == "relax.concat":
        args = list(call.args[0].fields)
    elif call.op.name in BINARY_OPS:
        args = list(call.args)
    else:
        args = [call.args[0]]  # the tensor; any other argument is a shape or attribute
    if not all(is_constant(arg) for arg in args):
        return None
    return [value(arg) for arg in args]


def _foldable(call) -> bool:
    if not isinstance(call.op, tvm.ir.Op) or call.op.name not in FOLDERS:
        return False
    if static_shape(call) is None:
        return False
    return call.op.name != "relax.divide" or dtype(call).startswith("float")


def _evaluate(call):
    operands = _operands(call)
    if operands is None:
        return None
    result = np.asarray(FOLDERS[call.op.name](call, *operands)).astype(dtype(call))
    if result.shape != static_shape(call):
        return None
    if result.nbytes - sum(a.nbytes for a in operands) > GROWTH_LIMIT_BYTES:
        return None
    return const(result)


@mutator
class _ConstantFolder(PyExprMutator):
    def visit_var_(self, var):
        bound = self.lookup_binding(var)
        return bound if is_constant(bound) else var

    visit_dataflow_var_ = visit_var_

    def visit_call_(self, call):
        # normalized, so that a call rebuilt around inlined constants knows its type again
        call = self.builder_.normalize(self.visit_expr_post_order(call))
        folded = _evaluate(call) if _foldable(call) else None
        return call if folded is None else folded


@tvm.relax.transform.function_pass(opt_level=0, name="tvmopt.FoldConstants")
class FoldConstants:
    def transform_function(self, func, mod, ctx):
        if is_primitive(func):
            return func
        return _ConstantFolder().visit_expr(func)
