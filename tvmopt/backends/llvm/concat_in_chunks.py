"""Concat legalized so that it vectorizes on CPUs: each element's input chosen per chunk.

TOPI's concatenate picks each element's input with if_then_else(offset <= c, b[c - offset], a[c])
on the concat axis c. Vectorized along c, that condition differs between a vector's lanes, and
TVM's vectorizer then runs the whole loop one element at a time: SqueezeNet's channels-last
concats of two 64-channel maps were scalar copies. Where every input's extent is a multiple of
a chunk g (64 and 64: g = 64), the condition is written on c // g instead; split into vectors
of lanes dividing g, c // g is the same in every lane, the condition stays scalar and each vector
is one contiguous load of one input.
"""

from __future__ import annotations

import math

from tvm import te, tirx

from ..._tvm import tvm
from ...passes.consts import static_shape


def concat_in_chunks(inputs, axis: int, chunk: int):
    """`inputs` concatenated on `axis`, each element's input chosen by its index // `chunk`
    (`chunk` divides every input's extent on `axis`)."""
    sizes = [int(x.shape[axis]) for x in inputs]
    offsets = [sum(sizes[:i]) for i in range(len(inputs))]
    shape = [*inputs[0].shape[:axis], sum(sizes), *inputs[0].shape[axis + 1 :]]

    def value(*index):
        block = index[axis] // chunk
        picked = _read(inputs[-1], index, axis, offsets[-1])
        for i in reversed(range(len(inputs) - 1)):  # input i up to the next one's offset
            mine = _read(inputs[i], index, axis, offsets[i])
            picked = tirx.if_then_else(block < offsets[i + 1] // chunk, mine, picked)
        return picked

    return te.compute(shape, value, name="T_concat")


def _read(x, index, axis: int, offset: int):
    return x[(*index[:axis], index[axis] - offset, *index[axis + 1 :])]


def _legalize_concat(bb, call):
    fields = _fields(bb, call.args[0]) or []
    shapes = [static_shape(field) for field in fields]
    if call.attrs.axis is None or len(fields) < 2 or None in shapes:
        return _default(bb, call)
    axis = int(call.attrs.axis) % len(shapes[0])
    chunk = math.gcd(*(shape[axis] for shape in shapes))
    if chunk < 2:  # an input of odd extent: no chunk, TOPI's per-element choice
        return _default(bb, call)
    return bb.call_te(concat_in_chunks, fields, axis, chunk, primfunc_name_hint="concatenate")


def _fields(bb, tuple_expr):
    from tvm import relax

    expr = tuple_expr
    while isinstance(expr, relax.Var):
        bound = bb.lookup_binding(expr)
        if not isinstance(bound, relax.Tuple | relax.Var):
            break
        expr = bound
    return list(expr.fields) if isinstance(expr, relax.Tuple) else None


def _default(bb, call):
    return tvm.ir.Op.get("relax.concat").get_attr("FLegalize")(bb, call)


CONCAT_IN_CHUNKS = {"relax.concat": _legalize_concat}
