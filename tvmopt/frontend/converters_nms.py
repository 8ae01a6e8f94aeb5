"""NonMaxSuppression, correcting TVM's converter, whose kernel (topi's all-class NMS) differs
from ONNX at the edges:

    IoU == iou_threshold     TVM suppresses (IoU >= t); ONNX only above it: t becomes the next
                             float32 up, and a negative t 0 (ONNX then suppresses any overlap)
    score <= 0               TVM's kernel marks suppressed boxes by a score of -1 and never
                             suppresses a box scored 0 or less: where the score threshold is
                             absent or negative, scores become their ranks (N for the class's
                             best box down to 1), which keep the order and are all positive
    a threshold not constant TVM used its default; here that is an error
    max_output_boxes > N     clamped to N: models often say int64's max, too big for the kernel

The thresholds must be constants (the ONNX backend compiles such inputs in: constant_slots.py).
"""

from __future__ import annotations

import numpy as np
from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend

from .._tvm import tvm

op = relax.op


class NonMaxSuppression(onnx_frontend.NonMaxSuppression):
    @classmethod
    def _impl_v10(cls, bb, inputs, attr, params):
        boxes, scores, limit, iou, score = list(inputs) + [None] * (5 - len(inputs))
        count = int(boxes.ty.shape[1])
        limit = min(max(int(_optional_scalar(limit, "max_output_boxes_per_class", 0)), 0), count)
        iou = np.nextafter(np.float32(max(_optional_scalar(iou, "iou_threshold", 0.0), 0.0)),
                           np.float32(np.inf))  # fmt: skip
        score = _optional_scalar(score, "score_threshold", None)
        if score is None or score < 0:
            scores, score = _ranks(scores, score, count), 0.5  # ranks above 0.5: the candidates
        constants = [relax.const(limit, "int64"), relax.const(iou), relax.const(np.float32(score))]
        return super()._impl_v10(bb, [boxes, scores, *constants], attr, params)


def _ranks(scores, threshold, count: int):
    """Each box's rank in its class as a float (count for the best; ties: the lower index
    first, as ONNX orders them), 0 where its score is not above `threshold`."""
    order = op.argsort(op.negative(scores), axis=-1)  # a stable sort: ties keep index order
    rank = op.astype(op.argsort(order, axis=-1), str(scores.ty.dtype))
    ranks = op.subtract(relax.const(count, str(scores.ty.dtype)), rank)
    if threshold is None:
        return ranks
    above = op.greater(scores, relax.const(threshold, str(scores.ty.dtype)))
    return op.where(above, ranks, op.zeros_like(ranks))


def _optional_scalar(expr, name: str, default):
    """A constant scalar input's value; `default` where the input is absent or empty."""
    if expr is None:
        return default
    if not isinstance(expr, tvm.ir.GenericConst):
        raise ValueError(f"NonMaxSuppression's {name} must be a constant")
    value = expr.value.numpy()
    return value.reshape(-1)[0].item() if value.size else default


OPS = {"NonMaxSuppression": NonMaxSuppression}
