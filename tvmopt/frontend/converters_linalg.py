"""Det, which TVM's importer lacks: Gaussian elimination with partial pivoting, unrolled over
the static matrix size in Relax ops, batched over the leading dims.

Rows are never swapped: step k picks, among the rows not yet pivots, the one with the largest
|A[r, k]|, multiplies the determinant by A[r, k] and eliminates column k from the other
non-pivot rows. The pivot rows, in order, form a permutation; its sign (by counting
inversions) is the sign the swaps would have given. A zero pivot makes the product 0; it is
replaced by 1 as a divisor so that later steps stay finite.
"""

from __future__ import annotations

from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend

from .converter_values import scalar_like

op = relax.op


class Det(onnx_frontend.OnnxOpConverter):
    @classmethod
    def _impl_v11(cls, bb, inputs, attr, params):
        a = inputs[0]
        size = int(a.ty.shape[-1])
        pivots, product = [], None
        used = bb.normalize(op.zeros_like(op.take(a, relax.const(0), axis=-1)))  # one-hot sum
        for k in range(size):
            column = bb.normalize(op.take(a, relax.const(k), axis=-1))  # [..., n]
            row = bb.normalize(op.argmax(_candidates(column, used), axis=-1, keepdims=True))
            pivots.append(row)
            chosen = op.equal(op.arange(size, dtype="int64"), row)  # row as a one-hot [..., n]
            chosen = bb.normalize(op.astype(chosen, str(a.ty.dtype)))
            pivot = bb.normalize(op.sum(op.multiply(chosen, column), axis=-1, keepdims=True))
            product = pivot if product is None else op.multiply(product, pivot)
            used = bb.normalize(op.add(used, chosen))
            a = _eliminated(bb, a, column, chosen, used, pivot)
        sign = _permutation_sign(pivots, a)
        return op.squeeze(op.multiply(product, sign), axis=[-1])


def _candidates(column, used):
    """|column| where the row is not yet a pivot, else -1: its argmax is the next pivot."""
    taken = op.greater(used, scalar_like(used, 0.5))
    return op.where(taken, scalar_like(column, -1), op.abs(column))


def _eliminated(bb, a, column, chosen, used, pivot):
    """`a` with the pivot row's multiples taken from the rows not yet pivots."""
    divisor = op.where(op.equal(pivot, scalar_like(pivot, 0)), op.ones_like(pivot), pivot)
    factors = op.multiply(op.divide(column, divisor), op.subtract(scalar_like(used, 1), used))
    pivot_row = op.sum(op.multiply(op.expand_dims(chosen, -1), a), axis=-2, keepdims=True)
    return bb.normalize(op.subtract(a, op.multiply(op.expand_dims(factors, -1), pivot_row)))


def _permutation_sign(pivots, like):
    """(-1) ** (the inversions among the pivot rows, in the order they were picked)."""
    inversions = None
    for i, earlier in enumerate(pivots):
        for later in pivots[i + 1:]:
            inverted = op.astype(op.greater(earlier, later), "int64")
            inversions = inverted if inversions is None else op.add(inversions, inverted)
    if inversions is None:  # a 1x1 matrix
        return scalar_like(like, 1)
    odd = op.equal(op.floor_mod(inversions, relax.const(2, "int64")), relax.const(1, "int64"))
    return op.where(odd, scalar_like(like, -1), scalar_like(like, 1))


OPS = {"Det": Det}
