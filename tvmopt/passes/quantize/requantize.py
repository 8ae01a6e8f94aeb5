"""Requantize in the producer: a tensor the int8 layers read leaves its producer as uint8.

    y = relu(int8_conv(x, ...));  int8_conv(y, ...), int8_conv(y, ...)      (same qparams)
      -> y = uint8(clip(round(relu(...) / scale) + zp, 0, 255));  the consumers read y as is

Every consumer would quantize y with the same qparams (they observed the same tensor), so the
quantization moves into the producer, where TVM's FuseOps fuses it into that layer's epilogue after
its bias and activation: the tensor between the layers is a quarter of the bytes, and the consumers
only transpose it. The arithmetic is the kernels' own (kernel_int8_gemm.py: multiply by the inverse
scale, round, add the zero point), so the int8 layers' results do not change.

A CNN's residual stream (ResNet's y = relu(conv(h) + x), read by the next block's convs and its
residual add) is requantized too: the add reads (y - zp) * scale, which FuseOps fuses into the
add's own epilogue, so the stream crosses memory as uint8 both ways, as in ONNX Runtime's QDQ
models, which put a Q/DQ pair on it. The add then sees y rounded to the grid the convs read it
on. A tensor that anything else reads (the output, a calibration tap) stays float32.

A max pool between the two (ResNet's stem: conv, relu, max pool, int8 convs) runs on uint8:
quantization is monotone, so max commutes with it, and uint8's padding, 0, is what float's -inf
quantizes to. The pool's input is requantized with the pool's output qparams, and the pool reads
and writes a quarter of the bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvm import relax

from ..consts import static_shape
from ..uses import bindings, op_name, readers
from .observers import QParams

# readers that may take the uint8 tensor dequantized: elementwise, so the dequantization fuses
DEQUANTIZED_READERS = ("relax.add",)


@dataclass(frozen=True)
class Requantization:
    qparams: QParams
    dequantized: bool  # whether a reader other than the int8 layers takes it as float
    pooled: bool = False  # a max pool of a requantized tensor: already uint8


def requantizable(func: relax.Function, plans: dict) -> dict:
    """Var -> Requantization, for each tensor that int8 layers read (themselves, not through a
    QDQ pair), all with the same qparams, and that nothing else reads but residual adds."""
    params, chosen, read_by = set(func.params), {}, readers(func)
    for var, exprs in read_by.items():
        if var in params:
            continue
        planned = [expr for expr in exprs if expr in plans]
        qparams = {_planned_input(expr, var, plans) for expr in planned}
        others = [expr for expr in exprs if expr not in plans]
        if others and not _feature_map(var):
            continue
        if len(qparams) == 1 and None not in qparams and all(map(_dequantizable, others)):
            chosen[var] = Requantization(qparams.pop(), dequantized=bool(others))
    _pool_on_uint8(bindings(func), read_by, params, chosen)
    return chosen


def _pool_on_uint8(values: dict, read_by: dict, params: set, chosen: dict) -> None:
    """y = max_pool2d(x) requantized, and x read by the pool alone: requantize x instead."""
    for var, plan in list(chosen.items()):
        pool = values.get(var)
        if op_name(pool) != "relax.nn.max_pool2d" or not isinstance(pool.args[0], relax.Var):
            continue
        source = pool.args[0]
        if source in chosen or source in params or len(read_by.get(source, [])) != 1:
            continue
        chosen[source] = Requantization(plan.qparams, dequantized=False)
        chosen[var] = Requantization(plan.qparams, plan.dequantized, pooled=True)


def _planned_input(expr, var, plans: dict) -> QParams | None:
    plan = plans[expr]
    if plan[2] is not None or not expr.args[0].same_as(var):
        return None
    return plan[1]


def _feature_map(var) -> bool:
    """A conv's 4-D activations. A transformer's hidden state (3-D) keeps its float residual:
    quantizing it costs BERT more accuracy (cosine 0.9999 -> 0.9987) than its bytes cost time."""
    shape = static_shape(var)
    return shape is not None and len(shape) == 4


def _dequantizable(expr) -> bool:
    return op_name(expr) in DEQUANTIZED_READERS


def requantized(value: relax.Expr, qparams: QParams) -> relax.Expr:
    inverse = relax.const(1.0 / qparams.scale, "float32")
    zero = relax.const(float(qparams.zero_point), "float32")
    shifted = relax.op.add(relax.op.round(relax.op.multiply(value, inverse)), zero)
    return relax.op.astype(relax.op.clip(shifted, 0.0, 255.0), "uint8")


def dequantized(quantized: relax.Expr, qparams: QParams) -> relax.Expr:
    zero = relax.const(float(qparams.zero_point), "float32")
    shifted = relax.op.subtract(relax.op.astype(quantized, "float32"), zero)
    return relax.op.multiply(shifted, relax.const(qparams.scale, "float32"))
