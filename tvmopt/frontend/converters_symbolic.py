"""Converters that keep a model's symbolic dims (batch, sequence) symbolic:

    Range(start, limit, delta)  (integer, constant start and delta, limit a dim)
        -> arange(start, limit, delta): its length an expression of the dim

TVM's importer gives a Range with a symbolic limit a fresh length variable (range_len_0)
unrelated to the dim it counts to. `positions = arange(seq)` in BERT's embeddings then has a
length nothing else shares, `tokens + positions` loses its shape, and the next Shape/Gather of
the head split fails ("shape_of expects a tensor input"). relax.op.arange with the dim as its
end infers the length from the dim itself (arange(0, seq, 1) has length seq).
"""

from __future__ import annotations

from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend

from .._tvm import tvm


def _constant_scalar(expr):
    """The Python int of a constant integer scalar, else None."""
    if not isinstance(expr, tvm.ir.GenericConst) or expr.value.numpy().size != 1:
        return None
    value = expr.value.numpy().reshape(())
    return int(value) if value.dtype.kind in "iu" else None


class Range(onnx_frontend.Range):
    @classmethod
    def _impl_v12(cls, bb, inputs, attr, params):
        start, limit, delta = (onnx_frontend.get_constant(x, params) for x in inputs[:3])
        first, step = _constant_scalar(start), _constant_scalar(delta)
        # a negative length (limit < start) is an error at run time here, where TVM's own
        # conversion clamps it to 0; a limit read off a shape is a dim, at least start's 0
        if first is None or step is None or step <= 0 or first != 0:
            return super()._impl_v12(bb, inputs, attr, params)
        if not tvm.ir.is_prim_expr(limit) or str(limit.ty) != "int64":
            return super()._impl_v12(bb, inputs, attr, params)
        return relax.op.arange(first, limit, step, str(start.ty.dtype))


OPS = {"Range": Range}
