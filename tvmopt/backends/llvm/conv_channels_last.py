"""Float convs channels last: each conv2d becomes an NHWC kernel (kernel_conv_nhwc.py's GEMM;
3x3 stride-1 convs on large maps Winograd's, kernel_winograd.py; depthwise convs
kernel_depthwise_nhwc.py).

    add(conv2d(x: NCHW, W: const), b: const per channel)
      -> permute_dims(conv2d_nhwc(permute_dims(x, NCHW_TO_NHWC), pack(W), b), NHWC_TO_NCHW)
         (conv2d_nhwc: a call_tir of kernel_conv_nhwc.py's kernel)

The permutes between two such convs then sink below the element-wise ops, pools and means in
between, and cancel (sink_permutes.py): a CNN runs NHWC from its first conv to its global pool.
Channels last, every conv vectorizes over L output channels (a vector of the target's: cpu.py,
16 float32 on AVX-512, 8 on AVX2), so a 7x7 map fills its vectors as
well as a 56x56 one, and a pointwise conv is a GEMM with its epilogue fused (the NCHW direct
conv vectorizes along rows of 7 or 14; conv1x1_as_matmul's way round costs two transposes).
Grouped convs whose groups fill whole panels well (ShuffleNet's) take the same GEMM, each panel
over its own group's channels (kernel_group_conv_nhwc.py), reading a channel shuffle before them
through its permutation (passes/channel_shuffle.py) rather than a copy. A model with other
grouped convs (ResNeXt's groups of 4 channels) keeps NCHW: those have NCHW rules, and a
transpose on each side of them would cost more than it saves; so does a model whose permutes
do not cancel (ops they cannot sink through, between many convs). Concats between convs
(DenseNet, Inception, SqueezeNet) pass the permutes on (sink_permutes.py). Runs after
quantization (an int8 layer has its own kernel) and before conv1x1_as_matmul (pipeline.py).
"""

from __future__ import annotations

from functools import partial

import numpy as np
from tvm import relax
from tvm.relax.expr_functor import PyExprMutator, mutator

from ..._tvm import tvm
from ...passes.channel_shuffle import channel_order
from ...passes.consts import const, is_constant, is_float, static_shape, value
from ...passes.conv_geometry import conv_geometry
from ...passes.quantize.annotate import Layer
from ...passes.quantize.bias import foldable_biases, folded_adds, layer_spans
from ...passes.quantize.layout import conv_layouts
from ...passes.sink_permutes import NCHW_TO_NHWC, NHWC_TO_NCHW, channels_last
from ...passes.spans import SpanningBuilder, spanned
from ...passes.uses import bindings, op_name
from . import kernel_conv_nhwc, kernel_depthwise_nhwc, kernel_group_conv_nhwc, kernel_winograd
from .kernel_int8_depthwise import pack_depthwise

LAYOUTS = ("NCHW", "OIHW", "NCHW")


def _conv_layers(func: relax.Function, lanes: int) -> list[Layer] | None:
    """The float convs to convert, or None when the model has a grouped conv whose groups would
    leave its panels mostly padding (it stays NCHW)."""
    convs = [(var, call) for var, call in bindings(func).items()
             if op_name(call) == "relax.nn.conv2d"]  # fmt: skip
    if any(not _groups_fill_panels(call, lanes) for _, call in convs):
        return None
    # named by position: var names can repeat (two imported bindings may both be "lv739")
    convertible = [(var, call) for var, call in convs if _convertible(call)]
    return [Layer(f"conv{i}", "depthwise" if _depthwise(call) else "conv2d", call, var)
            for i, (var, call) in enumerate(convertible)]  # fmt: skip


def _groups_fill_panels(call, lanes: int) -> bool:
    groups = int(call.attrs.groups)
    if groups == 1 or _depthwise(call):
        return True
    weight = call.args[1]
    if not is_constant(weight):
        return False
    return kernel_group_conv_nhwc.panel_lanes(groups, value(weight).shape, lanes) is not None


def _depthwise(call) -> bool:
    shape = static_shape(call.args[0])
    if shape is None or not is_constant(call.args[1]):
        return False
    weight_shape = value(call.args[1]).shape
    return kernel_depthwise_nhwc.is_depthwise(int(call.attrs.groups), weight_shape, shape[1])


def _convertible(call) -> bool:
    attrs = call.attrs
    layouts = (str(attrs.data_layout), str(attrs.kernel_layout), str(attrs.out_layout))
    shapes = static_shape(call.args[0]), static_shape(call)
    return (
        layouts == LAYOUTS and is_float(call) and str(call.args[0].ty.dtype) == "float32"
        and None not in shapes and is_constant(call.args[1])
    )  # fmt: skip


@mutator
class _ChannelsLast(PyExprMutator):
    def __init__(self, mod, convs: dict, folded_adds: dict, winograd: bool,  # noqa: PLR0913
                 lanes: int, accumulators: int = 0):  # fmt: skip
        super().__init__(mod)
        self.winograd, self.lanes, self.accumulators = winograd, lanes, accumulators
        self.convs = convs  # conv call -> its bias (per output channel) or None
        # conv call -> (input, output) layout: an input that does not come from a conv (the
        # image) is read NCHW by the kernel, rather than transposed by a kernel of its own
        self.layouts = conv_layouts(mod["main"], set(convs))
        self.folded_adds = folded_adds  # bias add call -> the conv's var
        self.spans = {}  # conv call with a folded bias add -> both their spans
        self.shuffled = {}  # grouped conv call -> the take it reads through (channel_shuffle.py)

    def visit_call_(self, call):
        if call in self.folded_adds:  # the bias is in the conv's output already
            return self.visit_expr(self.folded_adds[call])
        if call not in self.convs:
            return self.visit_expr_post_order(call)
        span = self.spans.get(call, call.span)
        builder = SpanningBuilder(self.builder_, span)
        take = self.shuffled.get(call)
        x = self.visit_expr(call.args[0] if take is None else take.args[0])
        return spanned(self._nhwc_conv(builder, call, x, take), span)

    def _nhwc_conv(self, builder, call, x, take=None):
        bias = self.convs[call]
        weight, channels_last = value(call.args[1]), self.layouts[call][0] == "NHWC"
        geometry = conv_geometry(call)
        algorithm = self._algorithm(call, geometry)
        groups = int(call.attrs.groups)
        kernel, packed = _kernel(weight, geometry, channels_last, algorithm, self.lanes, groups,
                                 self.accumulators)
        if algorithm == "direct":
            kernel = partial(kernel, accumulators=self.accumulators)
        if channels_last:
            x = builder.emit(relax.op.permute_dims(x, NCHW_TO_NHWC))
        args = [x, const(packed)]
        if bias is not None:
            args.append(const(bias.astype(np.float32)))
        else:
            kernel = partial(kernel, bias=None)
        if take is not None:  # the shuffle's permutation, read by the GEMM as a channel table
            args.append(take.args[1])
        out = builder.call_te(kernel, *args, primfunc_name_hint=kernel.func.__name__)
        return relax.op.permute_dims(builder.emit(out), NHWC_TO_NCHW)

    def _algorithm(self, call, geometry) -> str:
        if int(call.attrs.groups) != 1:
            return "depthwise" if _depthwise(call) else "grouped"
        channels_last = self.layouts[call][0] == "NHWC"
        pays = channels_last and kernel_winograd.pays(geometry)
        return "winograd" if self.winograd and pays else "direct"


def _kernel(weight: np.ndarray, geometry, channels_last: bool, algorithm: str, lanes: int,  # noqa: PLR0913
            groups: int = 1, accumulators: int = 0):  # fmt: skip
    """The TE kernel for this conv, and its weight packed for it in panels of `lanes` channels:
    `algorithm` is "winograd" (kernel_winograd.py), "depthwise" (kernel_depthwise_nhwc.py),
    "grouped" (a GEMM per group of `groups`, kernel_group_conv_nhwc.py) or
    "direct" (the GEMM, kernel_conv_nhwc.py), its panels sized for `accumulators` (cpu.py)."""
    if algorithm == "depthwise":
        kernel = partial(kernel_depthwise_nhwc.depthwise_conv2d_nhwc, geometry=geometry,
                         channels=len(weight), channels_last=channels_last)  # fmt: skip
        return kernel, pack_depthwise(weight, lanes)
    if algorithm == "grouped":
        kernel = partial(kernel_group_conv_nhwc.group_conv2d_nhwc, geometry=geometry, groups=groups,
                         channels=len(weight), channels_last=channels_last)  # fmt: skip
        width = kernel_group_conv_nhwc.panel_lanes(groups, weight.shape, lanes)
        return kernel, kernel_group_conv_nhwc.pack_group_weight(weight, groups, width)
    if algorithm == "winograd":
        tile = kernel_winograd.DEFAULT_TILE
        kernel = partial(kernel_winograd.conv2d_winograd, geometry=geometry,
                         channels=len(weight), tile=tile)  # fmt: skip
        return kernel, kernel_winograd.transform_weight(weight, tile, lanes)
    kernel = partial(kernel_conv_nhwc.conv2d_nhwc, geometry=geometry,
                     channels=len(weight), channels_last=channels_last)  # fmt: skip
    panels = kernel_conv_nhwc.weight_panels(geometry, len(weight), lanes, accumulators)
    return kernel, kernel_conv_nhwc.pack_weight(weight, lanes, panels)


def to_channels_last(mod: tvm.IRModule, winograd: bool = True, lanes: int = 16,
                     accumulators: int = 0) -> tvm.IRModule:  # fmt: skip
    """`mod` with its float convs channels last, their weights in panels of `lanes` channels;
    with `winograd`, 3x3 convs on maps where it pays take Winograd's kernel, whose transformed
    weights are 4x the direct ones; with `accumulators` (the register budget: cpu.py), direct
    convs' positions padded to whole register tiles where they divide badly
    (padded_positions.py)."""
    layers = _conv_layers(mod["main"], lanes)
    if not layers:
        return mod
    biases = foldable_biases(mod["main"], layers)
    convs = {layer.call: biases[layer.name][1] if layer.name in biases else None
             for layer in layers}  # fmt: skip
    mutator_ = _ChannelsLast(mod, convs, folded_adds(biases, layers), winograd, lanes,
                             accumulators)  # fmt: skip
    mutator_.spans = layer_spans(biases, layers)
    mutator_.shuffled = _shuffled(mod["main"], layers)
    main = mod.get_global_var("main")
    mutator_.builder_.update_func(main, mutator_.visit_expr(mod["main"]))
    converted = channels_last(mutator_.builder_.get())
    # a transpose in and one out, and one pair per 16 convs for an op the permutes cannot sink
    # through (Inception's two LRNs); more, and a transpose per conv would cost more than NHWC
    # saves
    if _permutes(converted["main"]) > _permutes(mod["main"]) + max(2, len(layers) // 8):
        return mod
    return converted


def _shuffled(func: relax.Function, layers: list[Layer]) -> dict:
    """Grouped conv call -> the channel permutation (a take along the channels) it reads, which
    its kernel reads through instead (kernel_group_conv_nhwc.py)."""
    values, found = bindings(func), {}
    for layer in layers:
        source = values.get(layer.call.args[0])
        grouped = layer.kind != "depthwise" and int(layer.call.attrs.groups) != 1
        if grouped and op_name(source) == "relax.take" and channel_order(source) is not None:
            found[layer.call] = source
    return found


def _permutes(func: relax.Function) -> int:
    return sum(op_name(value) == "relax.permute_dims" for value in bindings(func).values())


def ConvChannelsLast(winograd: bool = True, lanes: int = 16,  # noqa: N802
                     accumulators: int = 0) -> tvm.transform.Pass:  # fmt: skip
    """The pass, for panels of `lanes` float32 channels (the target's vector: cpu.py) and
    register tiles of `accumulators` vectors (0: positions never padded); without `winograd`,
    every conv on the direct kernel."""
    name = "tvmopt.ConvChannelsLast" if winograd else "tvmopt.DirectConvChannelsLast"

    @tvm.transform.module_pass(opt_level=0, name=name)
    def channels_last_pass(mod, ctx):
        return to_channels_last(mod, winograd, lanes, accumulators)

    return channels_last_pass
