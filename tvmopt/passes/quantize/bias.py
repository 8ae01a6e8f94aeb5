"""The layer's bias, folded into its int32 accumulator.

    add(conv2d(x, W), b)  -> int8 layer with correction += round(b / (act_scale * w_scale))

A bias is foldable when it is a constant with one value per output channel and the layer's
output has no other use (a tap or a second consumer needs the value before the bias). The
add then becomes the layer's output itself.
"""

from __future__ import annotations

import numpy as np
from tvm import relax

from ..consts import is_constant, value
from ..spans import merged
from ..uses import op_name, readers
from .annotate import Layer


def foldable_biases(func: relax.Function, layers: list[Layer]) -> dict:
    """Layer name -> (the add call, the bias per output channel)."""
    counts = {var: len(exprs) for var, exprs in readers(func).items()}
    by_var = {layer.var: layer for layer in layers}
    found = {}
    for block in func.body.blocks:
        for binding in block.bindings:
            match = _bias_add(binding.value, by_var, counts)
            if match is not None:
                layer, bias = match
                found[layer.name] = (binding.value, bias)
    return found


def folded_adds(biases: dict, layers: list[Layer]) -> dict:
    """Each folded bias add call -> its layer's var: what the add's readers read instead."""
    return {biases[layer.name][0]: layer.var for layer in layers if layer.name in biases}


def layer_spans(biases: dict, layers: list[Layer]) -> dict:
    """Each layer call with a folded bias add -> its span and the add's: the ONNX nodes its
    kernel covers (passes/spans.py)."""
    adds = {layer.call: biases[layer.name][0] for layer in layers if layer.name in biases}
    return {call: merged([call.span, add.span]) for call, add in adds.items()}


def _bias_add(expr, by_var: dict, counts: dict):
    if op_name(expr) != "relax.add":
        return None
    for operand, other in (expr.args, expr.args[::-1]):
        layer = by_var.get(operand)
        if layer is None or counts.get(operand) != 1 or not is_constant(other):
            continue
        bias = value(other)
        channels = _channels(layer)
        if bias.size == channels and _per_channel(bias.shape, layer.kind):
            return layer, bias.reshape(-1).astype(np.float64)
    return None


def _channels(layer: Layer) -> int:
    weight = value(layer.call.args[1])
    return int(weight.shape[1] if layer.kind == "matmul" else weight.shape[0])


def _per_channel(shape: tuple, kind: str) -> bool:
    """Broadcast along the channel axis only: [1, C, 1, 1] or [C, 1, 1] for NCHW, [..., N]."""
    dims = [int(d) for d in shape]
    if kind == "matmul":
        return all(d == 1 for d in dims[:-1])
    return len(dims) >= 3 and all(d == 1 for d in dims[-2:]) and all(d == 1 for d in dims[:-3])
