"""Channels last between layers: layout permutes sink below element-wise ops and cancel.

A channels-last kernel (the int8 layer, passes/quantize; the float conv, conv_channels_last.py)
is wrapped in a pair of permutes, so that the rest of the graph keeps its NCHW meaning:

    y = permute_dims(nhwc_conv(permute_dims(x, NCHW_TO_NHWC)), NHWC_TO_NCHW)
    z = relu(y + r)                              (element-wise; fused into the conv's epilogue)
    nhwc_conv(permute_dims(z, NCHW_TO_NHWC))

Sinking the permute below the element-wise ops, z = permute_dims(relu(t + r'), ...), puts it
next to the consumer's inverse permute, and the pair collapses (simplify.py's permute_chain):
tensors between channels-last layers, residual adds included, are never transposed.
A permute sinks through an element-wise op when each tensor operand is a permute with the same
axes, or a constant (a per-channel one is permuted at compile time); through a concat of
permutes with the same axes (along the permuted axis); through
a 2-D pool, which then runs NHWC (ResNet's stem max pool between two convs); through a take
along one axis (a channel shuffle, channel_shuffle.py); through an image resize
(sink_resize.py) and a reshape of runs of axes it keeps in order (sink_reshape.py); and
through a mean that keeps its dimensions (global average pooling), over the permuted axes.
A permute that moves only unit axes (after a global pool) is a reshape. The permutes
nobody reads any more are dead code.
"""

from __future__ import annotations

import functools
import operator

import numpy as np
from tvm import relax
from tvm.relax.dpl import is_const, is_op, is_tuple, wildcard

from .consts import const, is_constant, static_shape, value
from .rewrite import Rule, rule_pass
from .simplify import RULES as SIMPLIFY_RULES
from .sink_reshape import sunk_reshape
from .sink_resize import sunk_resize
from .uses import op_name

NCHW_TO_NHWC, NHWC_TO_NCHW = (0, 2, 3, 1), (0, 3, 1, 2)
POOLS = {
    "relax.nn.max_pool2d": relax.op.nn.max_pool2d,
    "relax.nn.avg_pool2d": relax.op.nn.avg_pool2d,
}
UNARY = ("relax.nn.relu", "relax.round", "relax.astype", "relax.sigmoid", "relax.tanh",
         "relax.exp", "relax.negative", "relax.floor", "relax.ceil", "relax.nn.silu")  # fmt: skip
BINARY = ("relax.add", "relax.subtract", "relax.multiply", "relax.divide", "relax.maximum",
          "relax.minimum")  # fmt: skip
# the ops the one-op rule sinks through (quantize/layout.py reads it); concats have their own
SINKABLE = {*UNARY, *BINARY, "relax.clip", *POOLS, "relax.image.resize2d"}
# concats of up to this many tensors: Inception's modules have 4, the last layer of
# DenseNet-121's third block reads 25 (and each block's first reads a concat of one)
MAX_CONCAT = 32

_permute, _other = is_op("relax.permute_dims")(wildcard()), is_op("relax.permute_dims")(wildcard())
_low, _high, _const = wildcard(), wildcard(), is_const()  # one pattern matches one expr


def _axes(permute) -> tuple[int, ...] | None:
    axes = permute.attrs.axes
    return None if axes is None else tuple(int(a) for a in axes)


def _rebuilt(expr, operands):
    return relax.Call(expr.op, operands, expr.attrs, expr.ty_args)


def _sink_unary(expr, matches):
    permute = matches[_permute]
    axes = _axes(permute)
    if axes is None:
        return None
    inner = _rebuilt(expr, [permute.args[0], *expr.args[1:]])
    return relax.op.permute_dims(inner, axes)


def _unpermuted(constant, order: tuple[int, ...]):
    """The constant c' with permute_dims(c', order) broadcasting as `constant` does: a per-channel
    [1, C, 1, 1] scale becomes [1, 1, 1, C] (a folded-in batch norm before a conv, as in
    DenseNet), at compile time; None for a constant of higher rank."""
    data = value(constant)
    if data.ndim > len(order):
        return None
    if data.size == 1:
        return constant  # a scalar broadcasts alike in any layout
    full = data.reshape((1,) * (len(order) - data.ndim) + data.shape)
    return const(np.ascontiguousarray(np.transpose(full, np.argsort(order))))


def _sink_binary(expr, matches):
    """op(permute(a), permute(b)) or op(permute(a), constant), either way round."""
    first = matches[_permute]
    second = matches.get(_other, matches.get(_const))
    if is_constant(expr.args[0]):  # op(constant, permute(a))
        first, second = second, first
    permutes = [e for e in (first, second) if _is_permute(e)]
    orders = {_axes(p) for p in permutes}
    if len(orders) != 1 or None in orders:
        return None
    (order,) = orders
    operands = [e.args[0] if _is_permute(e) else _unpermuted(e, order) for e in (first, second)]
    if None in operands:
        return None
    return relax.op.permute_dims(_rebuilt(expr, operands), order)


def _sink_concat(expr, matches, permutes):
    """concat(permute(a, p), permute(b, p), ..., axis) = permute(concat(a, b, ..., p[axis]), p):
    the branches of Inception's and SqueezeNet's modules, DenseNet's growing feature map."""
    orders = {_axes(matches[p]) for p in permutes}
    if len(orders) != 1 or None in orders:
        return None
    (order,) = orders
    axis = order[int(expr.attrs.axis) % len(order)]
    inner = relax.op.concat([matches[p].args[0] for p in permutes], axis)
    return relax.op.permute_dims(inner, order)


def _sink_pool(expr, matches):
    permute, attrs = matches[_permute], expr.attrs
    if _axes(permute) != NHWC_TO_NCHW or (attrs.layout, attrs.out_layout) != ("NCHW", "NCHW"):
        return None
    window = (attrs.pool_size, attrs.strides, attrs.padding, attrs.dilation)
    numbers = [[int(v) for v in values] for values in window]
    pooled = POOLS[expr.op.name](permute.args[0], *numbers, bool(attrs.ceil_mode),
                                 bool(attrs.count_include_pad), "NHWC", "NHWC")  # fmt: skip
    return relax.op.permute_dims(pooled, NHWC_TO_NCHW)


def _sink_mean(expr, matches):
    """mean(permute(t, p), axes, keepdims) = permute(mean(t, p[axes], keepdims), p)."""
    permute, attrs = matches[_permute], expr.attrs
    order = _axes(permute)
    if order is None or attrs.axis is None or not attrs.keepdims:
        return None
    axes = [order[int(axis) % len(order)] for axis in attrs.axis]
    return relax.op.permute_dims(relax.op.mean(permute.args[0], axes, keepdims=True), order)


def _sink_take(expr, matches):
    """take(permute(t, p), i, axis) = permute(take(t, i, p[axis]), p)."""
    permute, axis = matches[_permute], expr.attrs.axis
    order, indices = _axes(permute), static_shape(expr.args[1])
    if order is None or axis is None or indices is None or len(indices) != 1:
        return None  # more index dims than one would change the rank the permute applies to
    inner = relax.op.take(permute.args[0], expr.args[1], order[int(axis) % len(order)],
                          str(expr.attrs.mode))  # fmt: skip
    return relax.op.permute_dims(inner, order)


def _sink_resize(expr, matches):
    permute = matches[_permute]
    return sunk_resize(expr, _axes(permute), permute.args[0])


def _sink_reshape(expr, matches):
    permute = matches[_permute]
    order, shape = _axes(permute), static_shape(permute.args[0])
    if order is None or shape is None or static_shape(expr) is None:
        return None
    return sunk_reshape(expr, order, permute.args[0], shape)


def _is_permute(expr) -> bool:
    return op_name(expr) == "relax.permute_dims"


def _sinks() -> dict:
    """op name -> (the pattern of that op reading a permute, the rewrite that sinks it)."""
    sinks = {op: (is_op(op)(_permute), _sink_unary) for op in UNARY}
    sinks["relax.clip"] = (is_op("relax.clip")(_permute, _low, _high), _sink_unary)
    for op in BINARY:
        pattern = is_op(op)(_permute, _other) | is_op(op)(_permute, _const)
        sinks[op] = (pattern | is_op(op)(_const, _permute), _sink_binary)
    sinks.update({op: (is_op(op)(_permute), _sink_pool) for op in POOLS})
    sinks["relax.mean"] = (is_op("relax.mean")(_permute), _sink_mean)
    sinks["relax.take"] = (is_op("relax.take")(_permute, wildcard()), _sink_take)
    sinks["relax.image.resize2d"] = (is_op("relax.image.resize2d")(_permute, wildcard()),
                                     _sink_resize)  # fmt: skip
    sinks["relax.reshape"] = (is_op("relax.reshape")(_permute, wildcard()), _sink_reshape)
    return sinks


def _rules() -> list[Rule]:
    # One rule for every op: in one sweep a permute sinks down a whole chain of ops. With a rule
    # per op it moved about one op per round, and ResNet-50's int8 residual stream (relu,
    # requantize, dequantize, add, for six blocks) needed 30 rounds: past MAX_ROUNDS, so four
    # of its blocks kept their transposes.
    sinks = _sinks()
    pattern = functools.reduce(operator.or_, (pattern for pattern, _ in sinks.values()))

    def sink(expr, matches):
        return sinks[expr.op.name][1](expr, matches)

    kept = ("permute_chain", "noop_permute", "unit_axes_permute")
    simplify = [rule for rule in SIMPLIFY_RULES if rule.name in kept]
    return [Rule("sink_permute", pattern, sink), *_concat_rules(), *simplify]


def _concat_rules(widths=range(1, MAX_CONCAT + 1)) -> list[Rule]:
    """One rule per number of concatenated tensors (a tuple pattern has a fixed width)."""
    rules = []
    for width in widths:
        permutes = [is_op("relax.permute_dims")(wildcard()) for _ in range(width)]
        pattern = is_op("relax.concat")(is_tuple(permutes))
        rules.append(Rule(f"sink_permute_concat{width}", pattern,
                          functools.partial(_sink_concat, permutes=permutes)))  # fmt: skip
    return rules


SinkPermutes = rule_pass("tvmopt.SinkPermutes", _rules())


def channels_last(mod):
    """`mod` with its channels-last layers meeting channels last, and dead permutes gone."""
    passes = [
        relax.transform.ConvertToDataflow(),
        SinkPermutes,
        relax.transform.DeadCodeElimination(),
    ]
    for transform in passes:
        mod = transform(mod)
    return mod
