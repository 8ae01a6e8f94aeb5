"""Converters that keep a model's symbolic dims (batch, sequence) symbolic:

    Range(start, limit, delta)  (integer, constant start and delta, limit a dim)
        -> arange(start, limit, delta): its length an expression of the dim
    Reshape(dim, [1] or [-1])   (a dim read off a shape, as a scalar)
        -> ShapeExpr([dim]), as TVM's Unsqueeze(dim, [0]) gives
    Reshape(x [b, 4, p + s, 16], [-1, p + s, 16])
        -> reshape(x, [b * 4, p + s, 16]): the -1 the dims that the others do not take,
           where TVM infers b * (p + s) * 64 // (p * 16 + s * 16), which it cannot simplify and
           whose lowering then fails to build (a floordiv's `rmod` bound twice)

TVM's importer gives a Range with a symbolic limit a fresh length variable (range_len_0)
unrelated to the dim it counts to. `positions = arange(seq)` in BERT's embeddings then has a
length nothing else shares, `tokens + positions` loses its shape, and the next Shape/Gather of
the head split fails ("shape_of expects a tensor input"). relax.op.arange with the dim as its
end infers the length from the dim itself (arange(0, seq, 1) has length seq).
"""

from __future__ import annotations

import functools

import tvm_ffi
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


class Reshape(onnx_frontend.Reshape):
    # The dynamo exporter writes `past + seq` as Add(Squeeze(Shape), Squeeze(Shape)), which TVM
    # imports as a symbolic scalar, then reshapes that scalar to [1] for an Expand's shape
    # (GPT-2's causal mask); TVM's Reshape takes tensors only.
    @classmethod
    def _impl_v13(cls, bb, inputs, attr, params):
        data, shape = inputs[0], onnx_frontend.get_constant(inputs[1], params)
        if not tvm.ir.is_prim_expr(data) or not isinstance(shape, tvm.ir.GenericConst):
            return _inferred_dim_cancelled(bb, data, super()._impl_v13(bb, inputs, attr, params))
        target = shape.value.numpy().tolist()
        if target == []:
            return data
        if target in ([1], [-1]):
            return relax.ShapeExpr([data])
        return super()._impl_v13(bb, inputs, attr, params)


def _dims(expr):
    shape = getattr(getattr(expr, "ty", None), "shape", None)
    return list(shape.values) if isinstance(shape, relax.ShapeExpr) else None


def _cancelled(source: list, target: list, unknown: int):
    """target[unknown] as the product of the source dims that target's others do not match,
    or None if one of them matches none."""
    rest = list(source)
    for i, dim in enumerate(target):
        match = next((j for j, d in enumerate(rest) if tvm_ffi.structural_equal(d, dim)), None)
        if i != unknown and match is None:
            return None
        if i != unknown:
            rest.pop(match)
    return functools.reduce(lambda a, b: a * b, rest, tvm.tirx.const(1, "int64"))


def _inferred_dim_cancelled(bb, data, reshaped):
    """`reshaped` with a dim that TVM inferred as a division (an ONNX -1) written as the source
    dims it stands for."""
    reshaped = bb.normalize(reshaped)
    source, target = _dims(data), _dims(reshaped)
    if source is None or target is None:
        return reshaped
    divisions = [i for i, d in enumerate(target) if isinstance(d, tvm.tirx.FloorDiv)]
    if len(divisions) != 1:
        return reshaped
    dim = _cancelled(source, target, divisions[0])
    if dim is None:
        return reshaped
    target[divisions[0]] = dim
    return relax.op.reshape(data, target)


OPS = {"Range": Range, "Reshape": Reshape}
