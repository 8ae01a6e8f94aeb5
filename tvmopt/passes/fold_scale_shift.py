"""Fold per-channel scales and shifts into the weights and bias of the conv or matmul before them.

    y - c -> y + (-c)                     y / c -> y * (1/c)                 (float constants)
    (y + b) * s -> y * s + b*s            (y + b1) + b2 -> y + (b1+b2)
    (y * s1) * s2 -> y * (s1*s2)
    conv2d(x, W) * s -> conv2d(x, W * s[:, None, None, None])                (s per output channel)
    matmul(x, W) * s -> matmul(x, W * s)                                     (s along the last axis)

Batch norm reaches this pass as subtract/divide/multiply/add by constants (TVM's
DecomposeOpsForInference runs first), so a conv + batch norm ends as one conv and one bias add,
and fuse_epilogue sees conv + bias + activation. Needs constants inlined (FoldConstants first).
"""

from __future__ import annotations

import numpy as np
from tvm import relax
from tvm.relax.dpl import is_const, is_op, wildcard

from .consts import broadcast_keeps_shape, const, is_float, static_shape, value
from .rewrite import Rule, rule_pass

_y, _c, _c2, _w = wildcard(), is_const(), is_const(), is_const()
_conv = is_op("relax.nn.conv2d")(wildcard(), _w)
_matmul = is_op("relax.matmul")(wildcard(), _w)
_inner_add = is_op("relax.add")(_y, _c)
_inner_mul = is_op("relax.multiply")(_y, _c)


def _keeps_shape(expr, *arrays) -> bool:
    return is_float(expr) and all(broadcast_keeps_shape(expr, a) for a in arrays)


def _sub_to_add(expr, m):
    c = value(m[_c])
    return relax.op.add(m[_y], const(-c)) if _keeps_shape(m[_y], c) else None


def _div_to_mul(expr, m):
    c = value(m[_c])
    return relax.op.multiply(m[_y], const(1 / c)) if _keeps_shape(m[_y], c) else None


def _distribute(expr, m):
    """(y + b) * s -> y * s + b * s, so that the scale meets the conv or matmul."""
    b, s = value(m[_c]), value(m[_c2])
    if not _keeps_shape(m[_y], b, s):
        return None
    return relax.op.add(relax.op.multiply(m[_y], const(s)), const(b * s))


def _merge(op):
    def rewrite(expr, m):
        c1, c2 = value(m[_c]), value(m[_c2])
        return op(m[_y], const(_combine(op, c1, c2))) if _keeps_shape(m[_y], c1, c2) else None

    return rewrite


def _combine(op, c1, c2):
    return c1 + c2 if op is relax.op.add else c1 * c2


def _channel_scale(scale: np.ndarray, rank: int, axis: int) -> np.ndarray | None:
    """The scale as one value per channel of `axis` (of an output of `rank`), if it is that."""
    if scale.ndim > rank:
        return None
    full = scale.reshape((1,) * (rank - scale.ndim) + scale.shape)
    if any(size != 1 for i, size in enumerate(full.shape) if i != axis):
        return None
    return full.reshape(-1)


def _scale_conv(expr, m):
    conv, weight = m[_conv], value(m[_w])
    layout_ok = conv.attrs.data_layout == "NCHW" and conv.attrs.kernel_layout == "OIHW"
    scale = _channel_scale(value(m[_c]), 4, 1)
    if not (layout_ok and is_float(conv)) or scale is None:
        return None
    scaled = weight * np.broadcast_to(scale, (weight.shape[0],))[:, None, None, None]
    return relax.op.nn.conv2d(conv.args[0], const(scaled.astype(weight.dtype)), **_conv_attrs(conv))


def _conv_attrs(conv) -> dict:
    attrs = conv.attrs
    names = (
        "strides",
        "padding",
        "dilation",
        "groups",
        "data_layout",
        "kernel_layout",
        "out_layout",
    )
    return {name: getattr(attrs, name) for name in (*names, "out_dtype")}


def _scale_matmul(expr, m):
    matmul, weight = m[_matmul], value(m[_w])
    rank = len(static_shape(matmul) or ())
    scale = _channel_scale(value(m[_c]), rank, rank - 1) if rank else None
    if scale is None or weight.ndim < 2 or not is_float(matmul):
        return None
    scaled = weight * np.broadcast_to(scale, (weight.shape[-1],))
    return relax.op.matmul(matmul.args[0], const(scaled.astype(weight.dtype)))


RULES = [
    Rule("sub_to_add", is_op("relax.subtract")(_y, _c), _sub_to_add),  # y-c -> y+(-c)
    Rule("div_to_mul", is_op("relax.divide")(_y, _c), _div_to_mul),  # y/c -> y*(1/c)
    Rule("distribute", is_op("relax.multiply")(_inner_add, _c2), _distribute),  # (y+b)*s
    Rule("merge_adds", is_op("relax.add")(_inner_add, _c2), _merge(relax.op.add)),
    Rule("merge_scales", is_op("relax.multiply")(_inner_mul, _c2), _merge(relax.op.multiply)),
    Rule("scale_conv", is_op("relax.multiply")(_conv, _c), _scale_conv),  # conv*s -> conv(W*s)
    Rule("scale_matmul", is_op("relax.multiply")(_matmul, _c), _scale_matmul),
]

FoldScaleShift = rule_pass("tvmopt.FoldScaleShift", RULES)
