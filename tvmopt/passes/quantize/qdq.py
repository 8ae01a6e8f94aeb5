"""Pre-quantized (QDQ) models: read the qparams a quantizer already chose.

    conv2d(dequantize(quantize(x, s, zp)), W)  -> an int8 layer on x with qparams (s, zp)

ONNX Runtime's quantizer (and others) write QuantizeLinear/DequantizeLinear pairs around the
inputs of Conv, MatMul and Gemm, and DequantizeLinear on int8 weights, which our constant
folding turns back into float weights (Wq * w_scale). Requantizing those per channel at
absmax / 127 gives back the same Wq for a symmetric per-channel quantizer, and the activation
pair gives the layer's (scale, zero point): the model goes through the same int8 kernels as our
own calibration, with the quantizer's parameters. Q/DQ pairs elsewhere (around an add or a
pool) stay as they are: float32 arithmetic with the same rounding.
"""

from __future__ import annotations

import numpy as np
from tvm import relax

from ..consts import is_constant, value
from ..uses import bindings, op_name
from .annotate import Layer
from .observers import QParams

UINT8_SHIFT = {"uint8": 0, "int8": 128}  # an int8 zero point z is the uint8 zero point z + 128


def _scalar(expr) -> float | None:
    if not is_constant(expr) or value(expr).size != 1:
        return None
    return float(value(expr).reshape(()))


def qdq_input(bound: dict, layer: Layer) -> tuple[relax.Expr, QParams] | None:
    """(the float tensor before the layer's Q/DQ pair, its qparams), or None."""
    dequantize = bound.get(layer.call.args[0])
    if op_name(dequantize) != "relax.dequantize":
        return None
    quantize = bound.get(dequantize.args[0])
    if op_name(quantize) != "relax.quantize":
        return None
    dtype = str(quantize.attrs.out_dtype)
    params = [_scalar(e) for e in (*quantize.args[1:], *dequantize.args[1:])]
    if dtype not in UINT8_SHIFT or None in params or params[:2] != params[2:]:
        return None
    scale, zero_point = params[0], int(np.rint(params[1])) + UINT8_SHIFT[dtype]
    return quantize.args[0], QParams(scale, zero_point)


def prequantized_layers(func: relax.Function, layers: list[Layer]) -> dict:
    """Layer name -> (source, QParams) for every layer whose input is a Q/DQ pair."""
    bound = bindings(func)
    found = {layer.name: qdq_input(bound, layer) for layer in layers}
    return {name: found for name, found in found.items() if found is not None}
