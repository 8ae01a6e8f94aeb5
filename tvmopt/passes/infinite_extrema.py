"""max and min legalized with infinite identities for floats: the max of an all -inf row is -inf.

TOPI's max starts from the lowest finite value (-3.4e38 for float32), so a row whose every element
is -inf (an attention row masked out entirely) reduces to -3.4e38, and the check ONNX's Attention
function makes for such rows, ReduceMax(bias) == -inf, never fires: the row's NaN softmax leaks
into the output where ONNX writes zeros. Starting from -inf (+inf for min) gives the same result
on every other input, so this holds at every opt level and on every target.
"""

from __future__ import annotations

import math

from tvm import te, tirx, topi


def _extremum_te(x, axis, keepdims: bool, combine, identity: float):
    reducer = te.comm_reducer(combine, lambda dtype: tirx.const(identity, dtype), name="extremum")
    rank = len(x.shape)
    axes = sorted({int(a) % rank for a in axis}) if axis is not None else list(range(rank))
    reduce_axes = {a: te.reduce_axis((0, x.shape[a]), name=f"k{a}") for a in axes}
    kept = [a for a in range(rank) if a not in reduce_axes]
    shape = [1 if a in reduce_axes else x.shape[a] for a in range(rank) if keepdims or a in kept]

    def body(*index):
        outer = dict(zip(kept, index if not keepdims else [index[a] for a in kept], strict=True))
        point = [reduce_axes[a] if a in reduce_axes else outer[a] for a in range(rank)]
        return reducer(x(*point), axis=list(reduce_axes.values()))

    return te.compute(shape, body, name="extremum")


def _legalizer(name: str, combine, identity: float, integer_te):
    def legalize(bb, call):
        x, axis, keepdims = call.args[0], call.attrs.axis, bool(call.attrs.keepdims)
        if not str(x.ty.dtype).startswith(("float", "bfloat")):
            return bb.call_te(integer_te, x, axis, keepdims)  # TOPI's, exact for integers
        def extremum(data):
            return _extremum_te(data, axis, keepdims, combine, identity)

        return bb.call_te(extremum, x, primfunc_name_hint=name)

    return legalize


INFINITE_EXTREMA = {
    "relax.max": _legalizer("max", lambda a, b: tirx.max(a, b), -math.inf, topi.max),
    "relax.min": _legalizer("min", lambda a, b: tirx.min(a, b), math.inf, topi.min),
}
