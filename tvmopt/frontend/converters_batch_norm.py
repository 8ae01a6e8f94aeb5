"""BatchNormalization in training mode (training_mode=1), with the batch's own statistics.

    Y            = scale * (X - mean_b) / sqrt(var_b + epsilon) + B   (over all axes but 1)
    running_mean = input_mean * momentum + mean_b * (1 - momentum)
    running_var  = input_var * momentum + var_b * (1 - momentum)        (var_b: population)

TVM's converter hands training mode to relax's batch_norm, whose result our inference pipeline
decomposes with the running statistics: Y and the running outputs came out wrong. Here the
statistics are plain reductions. float16 data computes in float32, as ONNX asks. Inference mode
keeps TVM's conversion.
"""

from __future__ import annotations

from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend

from .converter_values import scalar_like

op = relax.op


class BatchNormalization(onnx_frontend.BatchNormalization):
    @classmethod
    def _impl_v15(cls, bb, inputs, attr, params):
        if not attr.get("training_mode", 0):
            return super()._impl_v15(bb, inputs, attr, params)
        x, scale, bias, mean, var = [bb.normalize(value) for value in inputs]
        compute = "float32" if str(x.ty.dtype) == "float16" else str(x.ty.dtype)
        x = bb.normalize(op.astype(x, compute))
        rank = len(x.ty.shape)
        axes = [0, *range(2, rank)]
        batch_mean = bb.normalize(op.mean(x, axes, keepdims=True))
        centered = bb.normalize(op.subtract(x, batch_mean))
        batch_var = bb.normalize(op.mean(op.multiply(centered, centered), axes, keepdims=True))
        eps = scalar_like(x, float(attr.get("epsilon", 1e-5)))
        scale, bias = (bb.normalize(op.astype(v, compute)) for v in (scale, bias))
        per_channel = [-1, *[1] * (rank - 2)]
        gain = op.divide(op.reshape(scale, per_channel), op.sqrt(op.add(batch_var, eps)))
        y = op.add(op.multiply(centered, gain), op.reshape(bias, per_channel))
        momentum = float(attr.get("momentum", 0.9))
        return relax.Tuple([
            op.astype(y, str(inputs[0].ty.dtype)),
            _running(mean, bb.normalize(op.reshape(batch_mean, [-1])), momentum),
            _running(var, bb.normalize(op.reshape(batch_var, [-1])), momentum),
        ])  # fmt: skip


def _running(statistic, batch_statistic, momentum):
    """statistic * momentum + batch_statistic * (1 - momentum), in the statistic's dtype."""
    batch_statistic = op.astype(batch_statistic, str(statistic.ty.dtype))
    kept = op.multiply(statistic, scalar_like(statistic, momentum))
    return op.add(kept, op.multiply(batch_statistic, scalar_like(statistic, 1 - momentum)))


OPS = {"BatchNormalization": BatchNormalization}
