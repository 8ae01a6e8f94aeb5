"""Epilogue fusion: a conv2d or matmul with the element-wise work after it becomes one kernel.

    conv2d|matmul [+ bias] [-> relu|relu6|gelu|silu|sigmoid] [+ residual] -> one fused kernel
    add -> layer_norm                                    -> one kernel (residual + LayerNorm)
    add -> softmax                                       -> one kernel (masked attention scores)

Patterns go to TVM's FuseOpsByPattern (longest first); each group becomes a Primitive function
that FuseTIR later turns into a single TIR function. The schedule rules rely on these groups: a
fused function named tvmopt.<anchor>_... has that anchor as its only reduction. Element-wise
chains not covered here are grouped by TVM's FuseOps after legalization. Runs last among the
graph passes, after fold_scale_shift has reduced batch norm to a bias add.
"""

from __future__ import annotations

import itertools

from tvm.relax.dpl import is_const, is_op, wildcard
from tvm.relax.transform import FuseOpsByPattern, FusionPattern

from .consts import static_shape

ANCHORS = {
    "conv2d": lambda: is_op("relax.nn.conv2d")(wildcard(), wildcard()),
    "matmul": lambda: is_op("relax.matmul")(wildcard(), wildcard()),
}
ACTIVATIONS = {
    "relu": lambda x: is_op("relax.nn.relu")(x),
    "relu6": lambda x: is_op("relax.clip")(x, wildcard(), wildcard()),
    "gelu": lambda x: is_op("relax.nn.gelu")(x),
    "silu": lambda x: is_op("relax.nn.silu")(x),
    "sigmoid": lambda x: is_op("relax.sigmoid")(x),
}


def _epilogue_pattern(anchor: str, bias: bool, activation: str | None, residual: bool):
    root = ANCHORS[anchor]()
    out = is_op("relax.add")(root, is_const()) if bias else root
    out = ACTIVATIONS[activation](out) if activation else out
    if residual:
        out = is_op("relax.add")(out, wildcard())
    name = "_".join(
        [anchor] + ["bias"] * bias + [activation] * bool(activation) + ["residual"] * residual
    )
    return FusionPattern(f"tvmopt.{name}", out, check=_same_shape_residual if residual else None)


def _same_shape_residual(context) -> bool:
    """A residual add must not broadcast (the anchor's loop nest then covers every output), and
    its other operand must not depend on the group itself: in x + f(x) with x a conv output,
    the pattern also matches x's conv with f(x) as the "residual", a cycle."""
    root = context.matched_expr
    same_shape = all(static_shape(arg) == static_shape(root) for arg in root.args)
    return same_shape and not _depends_on_group(context)


def _depends_on_group(context) -> bool:
    group = set(context.matched_bindings.keys())
    outside = {arg for arg in context.matched_expr.args if arg not in group}
    frontier, seen = list(group), set(group)
    while frontier:
        for user in context.var_usages.get(frontier.pop(), []):
            if user in outside:
                return True
            if user not in seen:
                seen.add(user)
                frontier.append(user)
    return False


def _normalization_patterns() -> list[FusionPattern]:
    residual = is_op("relax.add")(wildcard(), wildcard())
    layer_norm = is_op("relax.nn.layer_norm")(residual, wildcard(), wildcard())
    masked = is_op("relax.nn.softmax")(is_op("relax.add")(wildcard(), wildcard()))
    return [
        FusionPattern("tvmopt.residual_layer_norm", layer_norm),
        FusionPattern("tvmopt.masked_softmax", masked),
    ]


def epilogue_patterns() -> list[FusionPattern]:
    """Every combination, longest first, so the largest group wins."""
    combos = itertools.product(ANCHORS, (True, False), (*ACTIVATIONS, None), (True, False))
    patterns = [_epilogue_pattern(*combo) for combo in combos if any(combo[1:])]
    patterns.sort(key=lambda p: -p.name.count("_"))
    return patterns + _normalization_patterns()


def FuseEpilogue():  # noqa: N802 - named like the TVM passes it composes
    return FuseOpsByPattern(epilogue_patterns(), bind_constants=False)
