"""clip(x, lo, hi) -> minimum(maximum(x, lo), hi), with lo and hi constants of x's dtype.

TVM's ToMixedPrecision casts every argument of an op it converts, and clip's bounds are
PrimValues, not tensors: converting MobileNetV2's ReLU6 fails with "Expected TensorType, but got
T.float64". Spelled with tensor bounds, the activation converts like any other element-wise op,
and FuseOps still folds it into the conv's kernel. Runs only before fp16 conversion.
"""

from __future__ import annotations

import numpy as np
from tvm import relax
from tvm.relax.dpl import is_op, wildcard

from .consts import const
from .rewrite import Rule, rule_pass

_x, _lo, _hi = wildcard(), wildcard(), wildcard()


def _min_max(expr, m):
    bound_dtype = str(expr.ty.dtype)
    if bound_dtype not in ("float32", "float16"):
        return None
    lo, hi = (float(_number(m[bound])) for bound in (_lo, _hi))
    lower = const(np.array(lo, dtype=bound_dtype))
    upper = const(np.array(hi, dtype=bound_dtype))
    return relax.op.minimum(relax.op.maximum(m[_x], lower), upper)


def _number(prim):
    """A bound's value: relax.PrimValue wraps a FloatImm or IntImm, whose .value is a number."""
    inner = getattr(prim, "value", prim)
    return getattr(inner, "value", inner)


ClipAsMinMax = rule_pass(
    "tvmopt.ClipAsMinMax", [Rule("clip", is_op("relax.clip")(_x, _lo, _hi), _min_max)]
)
