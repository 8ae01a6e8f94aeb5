"""Requantize in the producer: a tensor read only by int8 layers leaves its producer as uint8.

    y = relu(int8_conv(x, ...));  int8_conv(y, ...), int8_conv(y, ...)      (same qparams)
      -> y = uint8(clip(round(relu(...) / scale) + zp, 0, 255));  the consumers read y as is

Every consumer would quantize y with the same qparams (they observed the same tensor), so the
quantization moves into the producer, where TVM's FuseOps fuses it into that layer's epilogue
after its bias and activation: the tensor between the layers is a quarter of the bytes, and the
consumers only transpose it. The arithmetic is the kernels' own (kernels.py: multiply by the
inverse scale, round, add the zero point), so results do not change. A tensor that anything
else reads (a residual add, a pool, the output, a calibration tap) stays float32.
"""

from __future__ import annotations

from tvm import relax

from .observers import QParams
from .uses import readers


def requantizable(func: relax.Function, plans: dict) -> dict:
    """Var -> QParams, for each tensor whose every reader is a planned int8 layer (that reads it
    itself, not through a QDQ pair) and that all of them quantize alike."""
    params, chosen = set(func.params), {}
    for var, exprs in readers(func).items():
        qparams = {_planned_input(expr, var, plans) for expr in exprs}
        if var not in params and len(qparams) == 1 and None not in qparams:
            chosen[var] = qparams.pop()
    return chosen


def _planned_input(expr, var, plans: dict) -> QParams | None:
    plan = plans.get(expr)
    if plan is None or plan[2] is not None or not expr.args[0].same_as(var):
        return None
    return plan[1]


def requantized(value: relax.Expr, qparams: QParams) -> relax.Expr:
    inverse = relax.const(1.0 / qparams.scale, "float32")
    zero = relax.const(float(qparams.zero_point), "float32")
    shifted = relax.op.add(relax.op.round(relax.op.multiply(value, inverse)), zero)
    return relax.op.astype(relax.op.clip(shifted, 0.0, 255.0), "uint8")
