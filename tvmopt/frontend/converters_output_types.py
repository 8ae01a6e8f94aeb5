"""Converters correcting the output types TVM's gave.

    EyeLike(x: int32[n, m], dtype=float)  -> eye(n, m, k, float)   (TVM refused the pair)
    Dropout(x, ratio, training_mode)      -> x, ones(bool)         (TVM's mask: x's dtype)

EyeLike's dtype attribute names the output type, whatever the input's: TVM raised where the two
differed. Dropout's mask is bool since opset 12. Inference drops nothing, so the output is the
input and the mask all true; so does training with ratio 0. Training with a ratio above 0 drops at
random, which a compiled inference graph does not: that is refused rather than run as identity.
"""

from __future__ import annotations

from onnx import helper
from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend

from .._tvm import tvm

op = relax.op


class EyeLike(onnx_frontend.EyeLike):
    @classmethod
    def _impl_v9(cls, bb, inputs, attr, params):
        x = inputs[0]
        dtype = attr.get("dtype")
        dtype = str(x.ty.dtype) if dtype is None else str(helper.tensor_dtype_to_np_dtype(dtype))
        rows, columns = x.ty.shape  # eye, not eye_like: its legalization drops the dtype
        return op.eye(rows, columns, attr.get("k", 0), dtype)


class Dropout(onnx_frontend.Dropout):
    @classmethod
    def _impl_v12(cls, bb, inputs, attr, params):
        x = inputs[0]
        ratio = _constant_value(inputs[1] if len(inputs) > 1 else None, params, 0.5)
        training = _constant_value(inputs[2] if len(inputs) > 2 else None, params, False)
        if training is None or (training and ratio != 0):
            raise ValueError("Dropout in training mode (or a mode known only at run time) drops "
                             "at random; tvmopt compiles inference graphs")  # fmt: skip
        if attr.get("tvm_custom", {}).get("num_outputs", 1) == 1:
            return x
        return relax.Tuple([x, op.ones(x.ty.shape, "bool")])


def _constant_value(expr, params, default):
    """A scalar input's value; `default` where it is left out, None where not constant."""
    if expr is None:
        return default
    value = onnx_frontend.get_constant(expr, params)
    if not isinstance(value, tvm.ir.GenericConst):
        return None
    return value.value.numpy().reshape(()).item()


OPS = {"EyeLike": EyeLike, "Dropout": Dropout}
