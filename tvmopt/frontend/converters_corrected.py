"""Converters correcting TVM's where its results were silently wrong: IsInf's detect_negative
and detect_positive (it flagged both infinities whatever they said), SpaceToDepth's mode (opset
28's CRD order came out in the DCR order), and LayerNormalization's Mean and InvStdDev outputs
(it gave a scalar 0 for each). And where it refused: Unsqueeze of scalar axes; ReduceMax and
ReduceMin of bools (opset 20: "any" and "all"), which TVM's max and min cannot compile (they
have no identity for bool), reduce bytes instead; RMSNormalization over all axes (axis 0),
which TVM's rms_norm cannot compile, over all but a leading unit axis instead; Split with
zero-size parts, which TVM's split refuses (its split points must increase), as one slice per
part; Elu of float16 (it made float32 constants, which float16 tensors cannot meet).
"""

from __future__ import annotations

import numpy as np
from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend

from .._tvm import tvm
from .converter_values import scalar_like, text

op = relax.op


class IsInf(onnx_frontend.IsInf):
    @classmethod
    def _impl_v10(cls, bb, inputs, attr, params):
        x = inputs[0]
        negative, positive = attr.get("detect_negative", 1), attr.get("detect_positive", 1)
        infinite = op.isinf(x)
        if negative and positive:
            return infinite
        zero = scalar_like(x, 0)
        sign = op.greater(x, zero) if positive else op.less(x, zero)
        return op.logical_and(infinite, sign) if negative or positive else op.zeros_like(infinite)


class SpaceToDepth(onnx_frontend.SpaceToDepth):
    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        mode = attr.get("mode", b"DCR")
        if text(mode) != "CRD":
            return super()._impl_v1(bb, inputs, attr, params)
        block = int(attr["blocksize"])
        b, c, h, w = inputs[0].ty.shape
        x = op.reshape(inputs[0], (b, c, h // block, block, w // block, block))
        x = op.permute_dims(x, [0, 1, 3, 5, 2, 4])  # channel, then the block's row and column
        return op.reshape(x, (b, c * block * block, h // block, w // block))


class LayerNormalization(onnx_frontend.LayerNormalization):
    @classmethod
    def _impl_v17(cls, bb, inputs, attr, params):
        normalized = super()._impl_v17(bb, inputs, attr, params)
        if attr.get("tvm_custom", {}).get("num_outputs", 1) == 1:
            return normalized  # Y alone: TVM's fused layer_norm
        x = inputs[0]
        rank, axis = len(x.ty.shape), attr.get("axis", -1)
        axes = list(range(axis % rank, rank))
        stash = "float32" if attr.get("stash_type", 1) == 1 else str(x.ty.dtype)
        x = bb.normalize(op.astype(x, stash))
        mean = bb.normalize(op.mean(x, axes, keepdims=True))
        centered = op.subtract(x, mean)
        variance = op.mean(op.multiply(centered, centered), axes, keepdims=True)
        epsilon = relax.const(attr.get("epsilon", 1e-5), stash)
        inverse = op.rsqrt(op.add(variance, epsilon))
        return relax.Tuple([normalized[0], mean, inverse])


class Unsqueeze(onnx_frontend.Unsqueeze):
    """A scalar axes (AffineGrid's function body writes one) is the list of that one axis."""

    @classmethod
    def _impl_v13(cls, bb, inputs, attr, params):
        axes = inputs[1]
        if isinstance(axes, tvm.ir.GenericConst) and axes.value.numpy().ndim == 0:
            axes = relax.const(axes.value.numpy().reshape(1), str(axes.ty.dtype))
            inputs = [inputs[0], axes]
        return super()._impl_v13(bb, inputs, attr, params)

class ReduceMax(onnx_frontend.ReduceMax):
    @classmethod
    def _impl_v18(cls, bb, inputs, attr, params):
        return _bools_as_bytes(super()._impl_v18, bb, inputs, attr, params)


class ReduceMin(onnx_frontend.ReduceMin):
    @classmethod
    def _impl_v18(cls, bb, inputs, attr, params):
        return _bools_as_bytes(super()._impl_v18, bb, inputs, attr, params)


def _bools_as_bytes(reduce, bb, inputs, attr, params):
    """`reduce` of a bool input run on uint8: 0 and 1 order as False and True do."""
    if str(inputs[0].ty.dtype) != "bool":
        return reduce(bb, inputs, attr, params)
    as_bytes = bb.normalize(op.astype(inputs[0], "uint8"))
    return op.astype(reduce(bb, [as_bytes, *inputs[1:]], attr, params), "bool")


class RMSNormalization(onnx_frontend.RMSNormalization):
    @classmethod
    def _impl_v23(cls, bb, inputs, attr, params):
        rank = len(inputs[0].ty.shape)
        if attr.get("axis", -1) % rank != 0:
            return super()._impl_v23(bb, inputs, attr, params)
        # rms_norm over every axis leaves a 0-d mean its schedule cannot index: add a unit axis
        x = bb.normalize(op.expand_dims(inputs[0], 0))
        normalized = super()._impl_v23(bb, [x, *inputs[1:]], {**attr, "axis": 1}, params)
        return op.squeeze(normalized, [0])


class Elu(onnx_frontend.Elu):
    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        x, alpha = inputs[0], float(attr.get("alpha", 1.0))
        negative = op.nn.relu(scalar_like(x, 1) - op.exp(x))  # 1 - exp(x) > 0 where x < 0
        return scalar_like(x, -alpha) * negative + op.nn.relu(x)


class Split(onnx_frontend.Split):
    @classmethod
    def _impl_v13(cls, bb, inputs, attr, params):
        sizes = inputs[1] if len(inputs) > 1 else None
        sizes = None if sizes is None else onnx_frontend.get_constant(sizes, params)
        if not isinstance(sizes, tvm.ir.GenericConst) or 0 not in sizes.value.numpy():
            return super()._impl_v13(bb, inputs, attr, params)
        axis, ends = attr.get("axis", 0), np.cumsum(sizes.value.numpy()).tolist()
        starts = [0, *ends[:-1]]
        parts = [op.strided_slice(inputs[0], [axis], [start], [end])
                 for start, end in zip(starts, ends, strict=True)]  # fmt: skip
        return relax.Tuple(parts)


OPS = {
    "IsInf": IsInf,
    "SpaceToDepth": SpaceToDepth,
    "LayerNormalization": LayerNormalization,
    "Unsqueeze": Unsqueeze,
    "ReduceMax": ReduceMax,
    "ReduceMin": ReduceMin,
    "RMSNormalization": RMSNormalization,
    "Split": Split,
    "Elu": Elu,
}
