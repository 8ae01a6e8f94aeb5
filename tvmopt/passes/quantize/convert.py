"""Convert: each annotated layer with its calibrated qparams becomes one int8 TIR function.

    conv2d(x, W)  -> call_tir(kernels.conv2d, x, kernels.pack_conv2d(Wq), correction, scale)
    depthwise conv2d(x, W) -> call_tir(kernels.depthwise, ...)
    add(conv2d(x, W), b) -> the same, b folded into correction (bias.py)
    a tensor the int8 layers read -> uint8 from its producer; a residual add reads it
        dequantized (requantize.py)
    matmul(x, W)  -> reshape(call_tir(kernels.matmul, reshape(x, [M, K]), ...), x's leading dims)

The kernels are the backend's (Backend.int8_kernels, an Int8Kernels): TE functions and the weight
layouts they read. Weights are quantized per output channel (symmetric int8, [-127, 127], or
7-bit [-63, 63] where the kernels' fast step wants it: Int8Kernels.weight_bits) and
packed at compile time into that layout; nothing is quantized at run time but the activations.
Conversion never looks at data: it reads only the qparams calibration produced. Runs where the
layers were annotated: after fold_scale_shift, before a backend's weight packing passes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
from tvm import relax
from tvm.relax.expr_functor import PyExprMutator, mutator

from ..._tvm import tvm
from ..consts import const, static_shape, value
from ..conv_geometry import conv_geometry
from ..sink_permutes import NCHW_TO_NHWC, NHWC_TO_NCHW, channels_last
from ..spans import SpanningBuilder, spanned
from .annotate import Layer
from .bias import foldable_biases, folded_adds, layer_spans
from .layout import conv_layouts
from .observers import QParams
from .requantize import dequantized, requantizable, requantized

SIGNED_SHIFT = 128  # a signed kernel's activation is the uint8 value less this
# an int8 matmul's PrimFunc attribute: its activation's [inv_scale, zero point], which a backend
# pass that swaps the kernel (backends/llvm/sparse_int8.py) quantizes with as the TE kernel did
INT8_MATMUL_ATTR = "tvmopt.int8_matmul"
FULL_LEVELS = 127  # symmetric int8 weights: [-127, 127]


def weight_levels(bits: int) -> int:
    """The largest |Wq| of symmetric `bits`-bit weights: 127 for 8 bits, 63 for 7."""
    return (1 << (bits - 1)) - 1


@dataclass(frozen=True)
class Int8Kernels:
    """The TE kernels a backend runs int8 layers on, and the layouts their packed weights take.

    conv2d(x, packed, correction, scale, *, geometry, channels, inv_scale, zero_point, layouts,
    [signed]) and depthwise(... the same, unsigned) take NHWC or NCHW sides (`layouts`);
    matmul(x [M, K], packed, correction, scale, *, columns, inv_scale, zero_point, [signed]).
    pack_conv2d and pack_depthwise take the int8 weight [O, C, KH, KW]; a matmul's weight is
    packed as a 1x1 conv's."""

    conv2d: Callable
    pack_conv2d: Callable
    depthwise: Callable
    pack_depthwise: Callable
    matmul: Callable
    signed: bool = False  # GEMMs read int8 activations, the uint8 value less SIGNED_SHIFT
    # the bits of a GEMM's (conv2d, matmul) weight: 7 where the fast int8 step wants them (AVX2
    # without VNNI: cpu.py's int8_pairs_fit); depthwise weights keep 8
    weight_bits: int = 8
    # (float weight, Wq, scale) -> (Wq, scale) the fast step is exact on, for a GEMM's weight
    # (backends/llvm/int8_quads.py: the depth-8 vpmaddubsw step's quads); None: Wq as it is
    fit_weight: Callable | None = None

    def conv(self, kind: str) -> tuple[Callable, Callable]:
        """(kernel, weight packing) of a conv layer kind (annotate.py)."""
        return (self.depthwise, self.pack_depthwise) if kind == "depthwise" else (
            self.conv2d, self.pack_conv2d)  # fmt: skip


def quantize_weight(weight_oihw: np.ndarray, levels: int = FULL_LEVELS):
    """Per-output-channel symmetric int8: (Wq, scale) with W ~ Wq * scale[:, None, None, None]
    and |Wq| <= `levels`."""
    peak = np.abs(weight_oihw.reshape(len(weight_oihw), -1)).max(axis=1)
    scale = np.where(peak > 0, peak / levels, 1.0).astype(np.float32)
    quantized = np.round(weight_oihw / scale[:, None, None, None])
    return np.clip(quantized, -levels, levels).astype(np.int8), scale


def kernel_constants(  # noqa: PLR0913 - the weight, then how it is quantized
    weight_oihw: np.ndarray,
    qparams: QParams,
    bias,
    pack,
    signed=False,
    levels=FULL_LEVELS,
    fit=None,
):
    """The packed weight, the int32 correction (-zp * sum Wq, plus the bias quantized at
    act_scale * w_scale) and the float scale per channel; a `signed` kernel's zero point is
    zp - SIGNED_SHIFT. `fit` (Int8Kernels.fit_weight) may requantize channels."""
    quantized, w_scale = quantize_weight(weight_oihw, levels)
    if fit is not None:
        quantized, w_scale = fit(weight_oihw, quantized, w_scale)
    sums = quantized.reshape(len(quantized), -1).astype(np.int64).sum(axis=1)
    scale = qparams.scale * w_scale.astype(np.float64)
    correction = -(qparams.zero_point - SIGNED_SHIFT * signed) * sums
    if bias is not None:
        correction = correction + np.round(bias / scale).astype(np.int64)
    correction = np.clip(correction, -(2**31), 2**31 - 1).astype(np.int32)
    scale = scale.astype(np.float32)
    return const(pack(quantized)), const(correction), const(scale)


CONV_KINDS = ("conv2d", "depthwise")  # the conv layer kinds (annotate.py)


@mutator
class _Converter(PyExprMutator):
    def __init__(self, mod, plans: dict, folded_adds: dict, requantize: dict,  # noqa: PLR0913
                 kernels: Int8Kernels):  # fmt: skip
        super().__init__(mod)
        self.kernels = kernels
        convs = {call for call, plan in plans.items() if plan[0].kind in CONV_KINDS}
        self.layouts = conv_layouts(mod["main"], convs)  # conv call -> (input, output) layout
        self.plans = plans  # layer call -> (Layer, QParams, the float input or None, bias)
        self.folded_adds = folded_adds  # bias add call -> the layer's var
        self.spans = {}  # layer call with a folded bias add -> both their spans
        self.requantize = requantize  # var the int8 layers read -> its Requantization
        self.uint8 = {}  # such a var -> its uint8 value, which the int8 layers read

    def visit_var_binding_(self, binding):
        plan = self.requantize.get(binding.var)
        if plan is None:
            return super().visit_var_binding_(binding)
        builder = SpanningBuilder(self.builder_, binding.value.span)
        produced = builder.emit(self.visit_expr(binding.value))
        # a max pool of a uint8 tensor is uint8 already (requantize.py)
        quantized = produced if plan.pooled else builder.emit(requantized(produced, plan.qparams))
        self.uint8[binding.var] = quantized
        if plan.dequantized:  # every other reader is a residual add: it takes the float value
            quantized = builder.emit(dequantized(quantized, plan.qparams))
        self.set_var_remap(binding.var, quantized)
        return None

    def visit_call_(self, call):
        if call in self.folded_adds:  # the bias is in the layer's output already
            return self.visit_expr(self.folded_adds[call])
        plan = self.plans.get(call)
        if plan is None:
            return self.visit_expr_post_order(call)
        layer, qparams, source, bias = plan
        # the input itself, not the call rebuilt around it: it may be uint8 (requantize.py)
        source = call.args[0] if source is None else source
        x = self.uint8[source] if source in self.uint8 else self.visit_expr(source)
        span = self.spans.get(call, call.span)
        builder = SpanningBuilder(self.builder_, span)
        if layer.kind in CONV_KINDS:
            layer_out = _int8_conv2d(builder, call, x, plan, self.layouts[call], self.kernels)
        else:
            layer_out = _int8_matmul(builder, call, x, qparams, bias, self.kernels)
        return spanned(layer_out, span)


def _int8_conv2d(builder, call, x, plan, layouts, kernels: Int8Kernels):  # noqa: PLR0913
    layer, qparams, _, bias = plan
    weight = value(call.args[1])
    te_kernel, pack = kernels.conv(layer.kind)
    # a depthwise kernel has no reduction over channels for dp4a: it stays uint8
    options = {"signed": True} if kernels.signed and layer.kind == "conv2d" else {}
    gemm = layer.kind == "conv2d"
    levels = weight_levels(kernels.weight_bits) if gemm else FULL_LEVELS
    packed, correction, scale = kernel_constants(
        weight, qparams, bias, pack, bool(options), levels, kernels.fit_weight if gemm else None
    )
    kernel = partial(  # TE arguments must be tensors or numbers: the rest is bound here
        te_kernel, geometry=conv_geometry(call), channels=int(weight.shape[0]),
        inv_scale=1.0 / qparams.scale, zero_point=qparams.zero_point, layouts=layouts,
        **options,
    )  # fmt: skip
    # NHWC sides are permuted back to the graph's NCHW here; layout.py cancels the pairs
    if layouts[0] == "NHWC":
        x = builder.emit(relax.op.permute_dims(x, NCHW_TO_NHWC))
    int8 = builder.call_te(kernel, x, packed, correction, scale,
                           primfunc_name_hint=f"int8_{layer.kind}")  # fmt: skip
    if layouts[1] == "NHWC":
        return relax.op.permute_dims(builder.emit(int8), NHWC_TO_NCHW)
    return int8


def _int8_matmul(builder, call, x, qparams, bias, kernels: Int8Kernels):  # noqa: PLR0913
    weight = value(call.args[1])  # [K, N]
    depth, columns = weight.shape
    signed = kernels.signed
    packed, correction, scale = kernel_constants(
        weight.T[:, :, None, None],
        qparams,
        bias,
        kernels.pack_conv2d,
        signed,
        weight_levels(kernels.weight_bits),
        kernels.fit_weight,
    )
    shape = static_shape(call.args[0])
    rows = int(np.prod(shape[:-1]))
    flat = builder.emit(relax.op.reshape(x, (rows, depth)))
    kernel = partial(
        kernels.matmul, columns=columns, inv_scale=1.0 / qparams.scale,
        zero_point=qparams.zero_point, signed=signed,
    )  # fmt: skip
    qparams_attr = {INT8_MATMUL_ATTR: [tvm.tirx.FloatImm("float64", 1.0 / qparams.scale),
                                       qparams.zero_point]}  # fmt: skip
    int8 = builder.call_te(kernel, flat, packed, correction, scale,
                           primfunc_name_hint="int8_matmul",
                           primfunc_attrs=qparams_attr)  # fmt: skip
    out = builder.emit(int8)
    return relax.op.reshape(out, static_shape(call))


def convert(mod, layers: list[Layer], qparams: dict[str, QParams], kernels: Int8Kernels,
            sources=None):  # fmt: skip
    """`mod` with every layer named in `qparams` converted to int8 on the backend's `kernels`;
    `sources` names, per layer, the float tensor to quantize instead of its input (a QDQ model's
    tensor before Q/DQ)."""
    sources = sources or {}
    chosen = [layer for layer in layers if layer.name in qparams]
    biases = foldable_biases(mod["main"], chosen)
    plans = {
        layer.call: (layer, qparams[layer.name], sources.get(layer.name),
                     biases[layer.name][1] if layer.name in biases else None)
        for layer in chosen
    }  # fmt: skip
    adds = folded_adds(biases, chosen)
    converter = _Converter(mod, plans, adds, requantizable(mod["main"], plans), kernels)
    converter.spans = layer_spans(biases, chosen)
    main = mod.get_global_var("main")
    converter.builder_.update_func(main, converter.visit_expr(mod["main"]))
    return channels_last(converter.builder_.get())
