"""Converters for ONNX ops TVM's importer lacks, built from Relax ops it has: CumProd (cumprod
along the axis, flipped around it for reverse), LpNormalization (x over the L1 or L2 norm along
the axis, 0 where that is 0), NegativeLogLikelihoodLoss (-x[n, t[n, ...], ...] * w[t], summed
or averaged over the weights of the targets not ignored) and BitCast (the bits read as another
dtype of their width). The recurrent layers have a file of their own (converters_recurrent.py)."""

from __future__ import annotations

from onnx import helper
from tvm import relax, topi
from tvm.relax.frontend.onnx import onnx_frontend

from .converter_values import constant_int, scalar_like, text

op = relax.op


class CumProd(onnx_frontend.OnnxOpConverter):
    @classmethod
    def _impl_v26(cls, bb, inputs, attr, params):
        data, axis = inputs[0], constant_int(inputs[1], "CumProd's axis")
        reverse = attr.get("reverse", 0) != 0
        if reverse:
            data = op.flip(data, axis)
        data = bb.normalize(op.cumprod(data, axis, exclusive=attr.get("exclusive", 0) != 0))
        return op.flip(data, axis) if reverse else data


class LpNormalization(onnx_frontend.OnnxOpConverter):
    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        x, axis, p = inputs[0], attr.get("axis", -1), attr.get("p", 2)
        if p == 1:
            norm = op.sum(op.abs(x), axis=[axis], keepdims=True)
        elif p == 2:
            norm = op.sqrt(op.sum(op.multiply(x, x), axis=[axis], keepdims=True))
        else:
            raise ValueError(f"LpNormalization's p must be 1 or 2, got {p}")
        norm = bb.normalize(norm)
        zero = scalar_like(x, 0)  # an all-zero slice stays zero (onnx's reference), not 0/0
        return op.where(op.equal(norm, zero), zero, op.divide(x, norm))


class NegativeLogLikelihoodLoss(onnx_frontend.OnnxOpConverter):
    @classmethod
    def _impl_v13(cls, bb, inputs, attr, params):
        x, target = inputs[0], inputs[1]
        weight = inputs[2] if len(inputs) > 2 else None
        dtype, ignored = str(x.ty.dtype), attr.get("ignore_index")
        kept = None if ignored is None else op.not_equal(target, scalar_like(target, ignored))
        index = target if kept is None else op.where(kept, target, scalar_like(target, 0))
        picked = op.squeeze(op.gather_elements(x, op.expand_dims(index, 1), axis=1), [1])
        weights = _target_weights(weight, index, kept, picked, dtype)
        loss = op.negative(op.multiply(picked, weights))
        return _reduced(loss, weights, attr.get("reduction", b"mean"))


def _target_weights(weight, index, kept, like, dtype: str):
    """Each position's weight: weight[target] (1 without weights), 0 where ignored."""
    weights = op.take(weight, index, axis=0) if weight is not None else op.ones_like(like)
    return weights if kept is None else op.where(kept, weights, relax.const(0, dtype))


def _reduced(loss, weights, reduction):
    reduction = text(reduction)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return op.sum(loss)
    if reduction == "mean":
        return op.divide(op.sum(loss), op.sum(weights))
    raise ValueError(f"unknown reduction '{reduction}'")


class BitCast(onnx_frontend.OnnxOpConverter):
    @classmethod
    def _impl_v26(cls, bb, inputs, attr, params):
        x, dtype = inputs[0], str(helper.tensor_dtype_to_np_dtype(attr["to"]))
        # LLVM's bool is one bit, stored in a byte: a byte's bits as bool are "not zero"
        if dtype == "bool":
            return op.not_equal(x, scalar_like(x, 0))
        if str(x.ty.dtype) == "bool":
            return op.astype(x, dtype)
        return bb.emit_te(topi.reinterpret, x, dtype)


OPS = {
    "BitCast": BitCast,
    "CumProd": CumProd,
    "LpNormalization": LpNormalization,
    "NegativeLogLikelihoodLoss": NegativeLogLikelihoodLoss,
}
