"""Channel shuffles as a permutation of channels, moved to where a conv reads it for free.

    reshape(permute_dims(reshape(x, [N, G, C/G, H, W]), [0, 2, 1, 3, 4]), [N, C, H, W])
      -> take(x, order, axis=1)                         (order: a constant permutation of C)
    op(take(x, order, axis=1))         -> take(op(x), order, axis=1)       (element-wise op)
    op(take(x, order, axis=1), c)      -> take(op(x, c'), order, axis=1)   (c per channel)
    conv2d(take(x, order, axis=1), W)  -> take(conv2d(x, W'), order, axis=1)  (depthwise)
    conv2d(take(x, order, axis=1), W)  -> conv2d(x, W')                    (dense: W' = W's
                                                                           input channels
                                                                           permuted)

ShuffleNet's shuffle (ShuffleNetV2's too) moves every tensor between its grouped convs once;
a per-channel op commutes with a permutation of the channels when its constants are permuted
alike, so the shuffle sinks below the bias, the activation and the depthwise conv, to the next
conv. A dense conv absorbs it into its weight; a grouped conv's channels-last kernel reads its
input through it, a scalar index per step of its GEMM (kernel_group_conv_nhwc.py); what no
conv reads stays one gather, whose layout permutes sink through (sink_permutes.py). Runs
before conv_channels_last (backends/llvm/pipeline.py), after the batch norms are folded.
"""

from __future__ import annotations

import numpy as np
from tvm import relax
from tvm.relax.dpl import is_const, is_op, wildcard

from .consts import const, is_constant, shape_values, static_shape, value
from .rewrite import Rule, rule_pass
from .sink_permutes import BINARY, UNARY

SHUFFLE_AXES = (0, 2, 1, 3, 4)

_x, _split, _merged = wildcard(), wildcard(), wildcard()
_reshape = is_op("relax.reshape")(_x, _split)
_swap = is_op("relax.permute_dims")(_reshape)
_shuffle = is_op("relax.reshape")(_swap, _merged)
_order, _c, _w = is_const(), is_const(), is_const()
_take = is_op("relax.take")(wildcard(), _order)
_slice = is_op("relax.strided_slice")(_take, varg_default_wildcard=True)


def _as_take(expr, matches):
    """The NCHW shuffle's reshape, swap and reshape back, as the one permutation they apply."""
    x, permute = matches[_x], matches[_swap]
    shape, split = static_shape(x), shape_values(matches[_split])
    axes = tuple(int(a) for a in permute.attrs.axes or ())
    if shape is None or len(shape) != 4 or split is None or axes != SHUFFLE_AXES:
        return None
    if shape_values(matches[_merged]) != shape or split != (*shape[:1], *split[1:3], *shape[2:]):
        return None
    order = np.arange(shape[1]).reshape(split[1:3]).T.reshape(-1)
    return relax.op.take(x, const(order.astype(np.int32)), axis=1)


def channel_order(take) -> np.ndarray | None:
    """The permutation a take along the channels (axis 1 of 4) applies, or None (also for a
    take of some of its input's channels: slice_of_take makes those)."""
    shape, indices = static_shape(take), take.args[1]
    if shape is None or len(shape) != 4 or int(take.attrs.axis) != 1 or not is_constant(indices):
        return None
    if static_shape(take.args[0]) != shape:
        return None
    order = value(indices)
    everyone_once = np.array_equal(np.sort(order), np.arange(shape[1]))
    return order if order.shape == (shape[1],) and everyone_once else None


def _unpermuted(order: np.ndarray, array: np.ndarray, axis: int) -> np.ndarray:
    """`array` with its `axis` indexed as the take's input is: a'[order] = a."""
    result = np.empty_like(array)
    index = [slice(None)] * array.ndim
    index[axis] = order
    result[tuple(index)] = array
    return result


def _sink_unary(expr, matches):
    take = matches[_take]
    if channel_order(take) is None:
        return None
    inner = relax.Call(expr.op, [take.args[0], *expr.args[1:]], expr.attrs, expr.ty_args)
    return relax.op.take(inner, take.args[1], axis=1)


def _sink_binary(expr, matches):
    """op(take(x), c) with c a scalar or per channel ([C, 1, 1] or [1, C, 1, 1]), either side."""
    take, constant = matches[_take], matches[_c]
    order, data = channel_order(take), value(constant)
    if order is None or data.ndim > 4:
        return None
    full = data.reshape((1,) * (4 - data.ndim) + data.shape)
    if full.shape[0] != 1 or full.shape[2:] != (1, 1) or full.shape[1] not in (1, len(order)):
        return None
    permuted = const(full if full.size == 1 else _unpermuted(order, full, 1))
    operands = [take.args[0], permuted] if is_constant(expr.args[1]) else [permuted, take.args[0]]
    inner = relax.Call(expr.op, operands, expr.attrs, expr.ty_args)
    return relax.op.take(inner, take.args[1], axis=1)


def _through_conv(expr, matches):
    """A depthwise conv passes the shuffle on; a dense one takes it into its weight."""
    take, attrs = matches[_take], expr.attrs
    order, weight = channel_order(take), value(matches[_w])
    layouts = (str(attrs.data_layout), str(attrs.kernel_layout), str(attrs.out_layout))
    if order is None or layouts != ("NCHW", "OIHW", "NCHW"):
        return None
    groups, args = int(attrs.groups), [take.args[0], *expr.args[1:]]
    if groups == 1:  # the weight's input channels read x as the shuffle would have
        args[1] = const(_unpermuted(order, weight, 1))
        return relax.Call(expr.op, args, attrs, expr.ty_args)
    if groups == len(order) == weight.shape[0] and weight.shape[1] == 1:  # depthwise
        args[1] = const(_unpermuted(order, weight, 0))
        return relax.op.take(relax.Call(expr.op, args, attrs, expr.ty_args), take.args[1], axis=1)
    return None  # a grouped conv: its channels-last kernel reads through the take


def _slice_of_take(expr, matches):
    """A slice of the channels of a take along them is the take of the slice of its indices:
    ShuffleNetV2 splits each shuffle's output in two; one half then goes to a dense conv, which
    takes the indices into its weight, the other on to the next concat."""
    take = matches[_take]
    strided = list(expr.args[1:5]) + [None] * (5 - len(expr.args))  # strides are optional
    axes, begin, end, strides = (_ints(arg) for arg in strided)
    if int(take.attrs.axis) != 1 or axes != [1] or strides not in ([1], None):
        return None
    if not is_constant(take.args[1]) or begin is None or end is None:
        return None
    indices = value(take.args[1])
    if indices.ndim != 1:  # a scalar index drops the axis the slice would name
        return None
    indices = indices[begin[0] : end[0]]
    return relax.op.take(take.args[0], const(indices), axis=1)


def _ints(arg) -> list[int] | None:
    fields = getattr(arg, "fields", None)
    if fields is None:
        return None
    try:
        return [int(getattr(field, "value", field)) for field in fields]
    except TypeError:  # a symbolic bound
        return None


def _rules() -> list[Rule]:
    unary = is_op(UNARY[0])(_take)
    for op in UNARY[1:]:
        unary |= is_op(op)(_take)
    binary = is_op(BINARY[0])(_take, _c) | is_op(BINARY[0])(_c, _take)
    for op in BINARY[1:]:
        binary |= is_op(op)(_take, _c) | is_op(op)(_c, _take)
    return [
        Rule("shuffle_as_take", _shuffle, _as_take),
        Rule("sink_take_unary", unary, _sink_unary),
        Rule("sink_take_binary", binary, _sink_binary),
        Rule("slice_of_take", _slice, _slice_of_take),
        Rule("take_through_conv", is_op("relax.nn.conv2d")(_take, _w), _through_conv),
    ]


FoldChannelShuffle = rule_pass("tvmopt.FoldChannelShuffle", _rules())
