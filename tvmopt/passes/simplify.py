"""Simplification: identity arithmetic and no-op layout ops vanish, layout chains collapse.

    x * 1 -> x        x + 0 -> x        x - 0 -> x        x / 1 -> x
    reshape(x: S, S) -> x               astype(x: T, T) -> x
    broadcast_to(x: S, S) -> x          (opset-6 Adds upgraded, in the model zoo's ResNet-50: a
                                         permute cannot sink through it, so channels last failed)
    permute_dims(x, identity) -> x      permute_dims(permute_dims(x, a), b) -> permute_dims(x, a∘b)
    permute_dims(x, p) -> reshape(x)    (p moves only axes of size 1: the data order is unchanged)
    reshape-like(reshape-like(x)) -> reshape(x, final shape)
                                         (reshape-like: reshape, squeeze, expand_dims, flatten)

Identity and Dropout never reach Relax: the ONNX importer drops them. Runs first in every
pipeline above -O0, and again after constant folding exposes new identities.
"""

from __future__ import annotations

import numpy as np
from tvm.relax.dpl import is_const, is_op, wildcard

from .consts import broadcast_keeps_shape, dtype, static_shape, value
from .rewrite import Rule, rule_pass

_x, _c = wildcard(), is_const()
RESHAPE_LIKE = ("relax.reshape", "relax.squeeze", "relax.expand_dims", "relax.flatten")


def _drop_if_constant_is(identity: float):
    def rewrite(expr, matches):
        array, operand = value(matches[_c]), matches[_x]
        if np.all(array == identity) and broadcast_keeps_shape(operand, array):
            return operand if dtype(operand) == dtype(expr) else None
        return None

    return rewrite


def _noop_reshape(expr, matches):
    shape = static_shape(expr)  # None for symbolic shapes, which prove nothing
    return matches[_x] if shape is not None and static_shape(matches[_x]) == shape else None


def _noop_astype(expr, matches):
    return matches[_x] if dtype(matches[_x]) == dtype(expr) else None


def _axes(call) -> list[int] | None:
    """permute_dims' axes; None (reverse) spelled out when the rank is known."""
    if call.attrs.axes is not None:
        return [int(a) for a in call.attrs.axes]
    shape = static_shape(call.args[0])
    return None if shape is None else list(reversed(range(len(shape))))


def _noop_permute(expr, matches):
    axes = _axes(expr)
    return matches[_x] if axes is not None and axes == sorted(axes) else None


def _unit_axes_permute(expr, matches):
    from tvm import relax

    axes, shape = _axes(expr), static_shape(matches[_x])
    if axes is None or shape is None:
        return None
    moved = [axis for axis in axes if shape[axis] != 1]
    return relax.op.reshape(matches[_x], static_shape(expr)) if moved == sorted(moved) else None


def _permute_chain(expr, matches):
    from tvm import relax

    inner = matches[_inner_permute]
    inner_axes, outer_axes = _axes(inner), _axes(expr)
    if inner_axes is None or outer_axes is None:
        return None
    composed = [inner_axes[axis] for axis in outer_axes]
    source = inner.args[0]
    return source if composed == sorted(composed) else relax.op.permute_dims(source, composed)


def _reshape_chain(expr, matches):
    from tvm import relax

    shape = static_shape(expr)
    return None if shape is None else relax.op.reshape(matches[_inner_reshape].args[0], shape)


def _reshape_like(operand):
    """Any reshape-like op applied to `operand` (with or without a shape argument)."""
    alternatives = [
        is_op(name)(operand, wildcard()) | is_op(name)(operand) for name in RESHAPE_LIKE
    ]
    pattern = alternatives[0]
    for alternative in alternatives[1:]:
        pattern = pattern | alternative
    return pattern


_inner_permute = is_op("relax.permute_dims")(wildcard())
_inner_reshape = _reshape_like(wildcard())

RULES = [
    Rule("mul_one", is_op("relax.multiply")(_x, _c), _drop_if_constant_is(1)),  # x*1 -> x
    Rule("add_zero", is_op("relax.add")(_x, _c), _drop_if_constant_is(0)),  # x+0 -> x
    Rule("sub_zero", is_op("relax.subtract")(_x, _c), _drop_if_constant_is(0)),  # x-0 -> x
    Rule("div_one", is_op("relax.divide")(_x, _c), _drop_if_constant_is(1)),  # x/1 -> x
    Rule("noop_reshape", is_op("relax.reshape")(_x, wildcard()), _noop_reshape),
    Rule("noop_astype", is_op("relax.astype")(_x), _noop_astype),
    Rule("noop_broadcast", is_op("relax.broadcast_to")(_x, wildcard()), _noop_reshape),
    Rule("noop_permute", is_op("relax.permute_dims")(_x), _noop_permute),
    Rule("permute_chain", is_op("relax.permute_dims")(_inner_permute), _permute_chain),
    Rule("unit_axes_permute", is_op("relax.permute_dims")(_x), _unit_axes_permute),
    Rule("reshape_chain", _reshape_like(_inner_reshape), _reshape_chain),
]

Simplify = rule_pass("tvmopt.Simplify", RULES)
