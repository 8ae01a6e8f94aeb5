"""OneHot with on and off values known at run time, indices of any numeric type.

    OneHot(indices, depth, [off, on], axis)
        -> where(int64(indices) (+ depth where negative) == arange(depth) along axis, on, off)

TVM's converter wanted the values as constants, and read float indices as it would integers.
ONNX casts non-integer indices to int64, wraps negative ones in [-depth, -1] to the back, and
leaves any index out of range with no on value at all. Only depth must be constant: it sizes the
output (constant_slots.py compiles a depth fed as a graph input in).
"""

from __future__ import annotations

import numpy as np
from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend

from .._tvm import tvm

op = relax.op


class OneHot(onnx_frontend.OneHot):
    @classmethod
    def _impl_v11(cls, bb, inputs, attr, params):
        indices, depth, values = inputs[0], _depth(inputs[1], params), inputs[2]
        rank = len(indices.ty.shape)
        axis = attr.get("axis", -1) % (rank + 1)
        indices = bb.normalize(op.astype(indices, "int64"))
        depth_ = relax.const(depth, "int64")
        negative = op.less(indices, relax.const(0, "int64"))
        indices = op.where(negative, op.add(indices, depth_), indices)
        positions = [1] * (rank + 1)
        positions[axis] = depth
        classes = op.reshape(relax.const(np.arange(depth, dtype=np.int64)), positions)
        hot = op.equal(op.expand_dims(indices, axis), classes)
        off, on = (op.take(values, relax.const(k, "int64"), 0, "clip") for k in (0, 1))
        return op.where(hot, on, off)


def _depth(expr, params) -> int:
    depth = onnx_frontend.get_constant(expr, params)
    if not isinstance(depth, tvm.ir.GenericConst):
        raise ValueError("OneHot's depth must be a constant: it sets the output's shape")
    return int(depth.value.numpy().reshape(()))


OPS = {"OneHot": OneHot}
