"""Convert: each annotated layer with its calibrated qparams becomes one int8 TIR function.

    conv2d(x, W)  -> call_tir(int8_conv2d, x, pack(Wq), correction, scale)
    add(conv2d(x, W), b) -> the same, b folded into correction (bias.py)
    a tensor read only by int8 layers -> uint8 from its producer (requantize.py)
    matmul(x, W)  -> reshape(call_tir(int8_matmul, reshape(x, [M, K]), ...), x's leading dims)

Weights are quantized per output channel (symmetric int8, [-127, 127]) and packed at compile
time into the layout the kernel reads (kernels.py); nothing is quantized at run time but the
activations. Conversion never looks at data: it reads only the qparams calibration produced.
Runs where the layers were annotated: after fold_scale_shift, before the weight packing passes.
"""

from __future__ import annotations

from functools import partial

import numpy as np
from tvm import relax
from tvm.relax.expr_functor import PyExprMutator, mutator

from ..consts import const, static_shape, value
from . import kernels
from .annotate import Layer
from .bias import foldable_biases
from .observers import QParams
from .requantize import requantizable, requantized

LANES, DEPTH = kernels.LANES, kernels.DEPTH


def quantize_weight(weight_oihw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel symmetric int8: (Wq, scale) with W ~ Wq * scale[:, None, None, None]."""
    peak = np.abs(weight_oihw.reshape(len(weight_oihw), -1)).max(axis=1)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    quantized = np.round(weight_oihw / scale[:, None, None, None])
    return np.clip(quantized, -127, 127).astype(np.int8), scale


def pack_weight(quantized: np.ndarray) -> np.ndarray:
    """[O, C, KH, KW] int8 -> [O/16, KH, KW, C/4, 16, 4], zero-padded to whole blocks."""
    out, channels, kh, kw = quantized.shape
    padded = np.zeros((-(-out // LANES) * LANES, -(-channels // DEPTH) * DEPTH, kh, kw), np.int8)
    padded[:out, :channels] = quantized
    blocks = padded.reshape(-1, LANES, padded.shape[1] // DEPTH, DEPTH, kh, kw)
    return np.ascontiguousarray(blocks.transpose(0, 4, 5, 2, 1, 3))


def kernel_constants(weight_oihw: np.ndarray, qparams: QParams, bias=None):
    """The packed weight, the int32 correction (-zp * sum Wq, plus the bias quantized at
    act_scale * w_scale) and the float scale per channel."""
    quantized, w_scale = quantize_weight(weight_oihw)
    sums = quantized.reshape(len(quantized), -1).astype(np.int64).sum(axis=1)
    scale = qparams.scale * w_scale.astype(np.float64)
    correction = -qparams.zero_point * sums
    if bias is not None:
        correction = correction + np.round(bias / scale).astype(np.int64)
    correction = np.clip(correction, -(2**31), 2**31 - 1).astype(np.int32)
    scale = scale.astype(np.float32)
    return const(pack_weight(quantized)), const(correction), const(scale)


def _conv_geometry(call: relax.Call) -> kernels.ConvGeometry:
    attrs, shape = call.attrs, static_shape(call)
    padding = [int(p) for p in attrs.padding]
    return kernels.ConvGeometry(
        kernel=tuple(value(call.args[1]).shape[2:]),
        strides=tuple(int(s) for s in attrs.strides),
        padding=(padding[0], padding[1]),
        dilation=tuple(int(d) for d in attrs.dilation),
        out_hw=(int(shape[2]), int(shape[3])),
    )


@mutator
class _Converter(PyExprMutator):
    def __init__(self, mod, plans: dict, folded_adds: dict, requantize: dict):
        super().__init__(mod)
        self.plans = plans  # layer call -> (Layer, QParams, the float input or None, bias)
        self.folded_adds = folded_adds  # bias add call -> the layer's var
        self.requantize = requantize  # var read only by int8 layers -> their QParams

    def visit_var_binding_(self, binding):
        if binding.var not in self.requantize:
            return super().visit_var_binding_(binding)
        produced = self.builder_.emit(self.visit_expr(binding.value))
        quantized = requantized(produced, self.requantize[binding.var])
        self.set_var_remap(binding.var, self.builder_.emit(quantized))
        return None

    def visit_call_(self, call):
        if call in self.folded_adds:  # the bias is in the layer's output already
            return self.visit_expr(self.folded_adds[call])
        plan = self.plans.get(call)
        if plan is None:
            return self.visit_expr_post_order(call)
        layer, qparams, source, bias = plan
        # the input itself, not the call rebuilt around it: it may be uint8 (requantize.py)
        x = self.visit_expr(call.args[0] if source is None else source)
        build = _int8_conv2d if layer.kind == "conv2d" else _int8_matmul
        return build(self.builder_, call, x, qparams, bias)


def _int8_conv2d(builder, call, x, qparams, bias):
    weight = value(call.args[1])
    packed, correction, scale = kernel_constants(weight, qparams, bias)
    kernel = partial(  # TE arguments must be tensors or numbers: the rest is bound here
        kernels.int8_conv2d, geometry=_conv_geometry(call), channels=int(weight.shape[0]),
        inv_scale=1.0 / qparams.scale, zero_point=qparams.zero_point,
    )  # fmt: skip
    return builder.call_te(kernel, x, packed, correction, scale, primfunc_name_hint="int8_conv2d")


def _int8_matmul(builder, call, x, qparams, bias):
    weight = value(call.args[1])  # [K, N]
    depth, columns = weight.shape
    packed, correction, scale = kernel_constants(weight.T[:, :, None, None], qparams, bias)
    shape = static_shape(call.args[0])
    rows = int(np.prod(shape[:-1]))
    flat = builder.emit(relax.op.reshape(x, (rows, depth)))
    kernel = partial(
        kernels.int8_matmul, columns=columns, inv_scale=1.0 / qparams.scale,
        zero_point=qparams.zero_point,
    )  # fmt: skip
    int8 = builder.call_te(
        kernel, flat, packed, correction, scale, primfunc_name_hint="int8_matmul"
    )
    out = builder.emit(int8)
    return relax.op.reshape(out, static_shape(call))


def convert(mod, layers: list[Layer], qparams: dict[str, QParams], sources=None):
    """`mod` with every layer named in `qparams` converted to int8; `sources` names, per layer,
    the float tensor to quantize instead of its input (a QDQ model's tensor before Q/DQ)."""
    sources = sources or {}
    chosen = [layer for layer in layers if layer.name in qparams]
    biases = foldable_biases(mod["main"], chosen)
    plans = {
        layer.call: (layer, qparams[layer.name], sources.get(layer.name),
                     biases[layer.name][1] if layer.name in biases else None)
        for layer in chosen
    }  # fmt: skip
    folded_adds = {add: layer.var for layer in chosen if layer.name in biases
                   for add in [biases[layer.name][0]]}  # fmt: skip
    converter = _Converter(mod, plans, folded_adds, requantizable(mod["main"], plans))
    main = mod.get_global_var("main")
    converter.builder_.update_func(main, converter.visit_expr(mod["main"]))
    return converter.builder_.get()
