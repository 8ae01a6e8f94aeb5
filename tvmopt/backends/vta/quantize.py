"""VTA's int8 recipe (reference section 7): power-of-two scales, symmetric int8, and a
requantization VTA's ALU can do (add, shift, clip).

    relu?(conv2d(x, W) + b)      (float32, batch norm already folded)
      -> xq = int8(clip(round(x / s_in), -127, 127))
         y8 = int8(relu?(clip((conv2d(xq, Wq) + bq + 2^(n-1)) >> n, -127, 127)))
         y  = float32(y8) * s_out

s_in and s_out are the powers of two that cover the calibration data's largest magnitude in
127 steps, s_w the one that covers the weight's; bq = round(b / (s_in s_w)) and
n = log2(s_out / (s_in s_w)). The integer chain is exactly what partition.py offloads, so the
CPU build and the VTA build of the quantized model compute the same bytes. Layers where n < 1
(the output would need a left shift) stay float32; so do matmuls (dense layers run on the CPU,
as in VTA's ResNet). A float value between two int8 layers is dequantized and quantized again
with the same power of two, which is exact.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
from tvm import relax
from tvm.relax.dpl import is_const, is_op, rewrite_call, wildcard

from ..._tvm import tvm
from ...passes.consts import const, value
from ...passes.quantize.annotate import find_layers
from ...passes.quantize.calibrate import TappedModel, add_taps


@dataclass
class LayerRange:
    input_max: float = 0.0
    output_max: float = 0.0  # after the bias


def power_of_two_scale(largest: float) -> float:
    """The smallest power of two s with 127 s >= largest (1.0 for an all-zero tensor)."""
    return 2.0 ** math.ceil(math.log2(largest / 127)) if largest > 0 else 1.0


def quantize_for_vta(mod: tvm.IRModule, samples, target) -> tvm.IRModule:
    """`mod` (float32 Relax after the graph passes) with its conv layers in VTA's recipe."""
    ranges = calibrate_ranges(mod, samples, target)
    patterns = _Patterns()
    out = tvm.IRModule(mod.functions)
    for gvar, func in mod.functions.items():
        if isinstance(func, relax.Function):
            rewriter = lambda expr, m: _quantized(expr, m, patterns, ranges)  # noqa: E731
            out[gvar] = rewrite_call(patterns.layer, rewriter, func)
    return out


def weight_key(weight: np.ndarray) -> str:
    """Layers are matched between the tapped build and the rewrite by their weights' bytes."""
    return hashlib.sha1(np.ascontiguousarray(weight).tobytes()).hexdigest()


def calibrate_ranges(mod, samples, target) -> dict[str, LayerRange]:
    tapped, layers = add_taps(mod, None)
    biases = _biases(mod)
    model = TappedModel(tvm.compile(tapped, target=target), len(layers))
    ranges = {layer.name: LayerRange() for layer in layers}
    for arrays in samples:
        _, inputs, outputs = model.run(arrays)
        for layer, x, y in zip(layers, inputs, outputs, strict=True):
            bias = biases.get(layer.name, 0.0)
            r = ranges[layer.name]
            r.input_max = max(r.input_max, float(np.abs(x).max()))
            r.output_max = max(r.output_max, float(np.abs(y + bias).max()))
    return {weight_key(value(layer.call.args[1])): ranges[layer.name] for layer in layers
            if layer.kind == "conv2d"}  # fmt: skip


def _biases(mod) -> dict[str, np.ndarray]:
    """Layer name -> its bias, read where no tap shares the conv's output (names follow binding
    order, as in the tapped build)."""
    from ...passes.quantize.bias import foldable_biases

    main = relax.transform.ToNonDataflow()(mod)["main"]
    found = foldable_biases(main, find_layers(main))
    return {name: bias.reshape(1, -1, 1, 1) for name, (_, bias) in found.items()}


class _Patterns:
    def __init__(self):
        self.x, self.weight, self.bias = wildcard(), is_const(), is_const()
        self.conv = is_op("relax.nn.conv2d")(self.x, self.weight)
        self.biased = is_op("relax.add")(self.conv, self.bias)
        self.relu = is_op("relax.nn.relu")(self.biased)
        self.layer = self.relu | self.biased


def _quantized(expr, matches, p: _Patterns, ranges: dict):
    conv, x = matches[p.conv], matches[p.x]
    weight, bias = value(matches[p.weight]), value(matches[p.bias])
    r = ranges.get(weight_key(weight))
    if r is None or bias.size != weight.shape[0]:
        return expr
    s_in, s_out = power_of_two_scale(r.input_max), power_of_two_scale(r.output_max)
    s_w = power_of_two_scale(float(np.abs(weight).max()))
    shift = round(math.log2(s_out / (s_in * s_w)))
    if shift < 1:  # VTA's requantization shifts right
        return expr
    wq = np.clip(np.round(weight / s_w), -127, 127).astype(np.int8)
    bq = np.round(bias.reshape(1, -1, 1, 1) / (s_in * s_w)).astype(np.int32)
    acc = relax.op.nn.conv2d(_quantize(x, s_in), const(wq), strides=conv.attrs.strides,
                             padding=conv.attrs.padding, dilation=conv.attrs.dilation,
                             groups=conv.attrs.groups, out_dtype="int32")  # fmt: skip
    y8 = _requantize(relax.op.add(acc, const(bq)), shift, relu=p.relu in matches)
    return relax.op.multiply(relax.op.astype(y8, "float32"), const(np.float32(s_out)))


def _clip127(expr):
    return relax.op.clip(expr, relax.prim_value(-127), relax.prim_value(127))


def _quantize(x, scale: float):
    scaled = relax.op.round(relax.op.multiply(x, const(np.float32(1 / scale))))
    return relax.op.astype(_clip127(scaled), "int8")


def _requantize(acc, shift: int, relu: bool):
    rounded = relax.op.add(acc, const(np.int32(1 << (shift - 1))))
    out = _clip127(relax.op.right_shift(rounded, const(np.int32(shift))))
    if relu:
        out = relax.op.maximum(out, const(np.int32(0)))
    return relax.op.astype(out, "int8")
