"""Softmax over a row of symbolic length, legalized with its reductions in vector-wide partials.

    nn.softmax(x[..., n], axis=-1), n symbolic -> per row: max and sum as `lanes` partial results
    over the row's whole vectors, a tail of n % lanes elements, fast_exp in between

A static row's reductions are split by the vector and rfactored (rule_row_reduce.py); with n
symbolic that split leaves a predicate (the last vector runs past n) that TVM's rfactor refuses,
so the max and the sum ran as scalar chains, one dependent step per element. Written here with
the split already made, the reduction over whole vectors has no predicate: block
`T_softmax_lanemax[.., v]` reduces x[.., t * lanes + v] over t < n // lanes, which the row rule
vectorizes along v, and the last n % lanes elements are reduced by a short scalar loop. The
lanes come from the target's CPU description (cpu.py). A static row whose length has no
vector-wide divisor (ViT's 197 tokens, a prime) takes the same form: the row rule's split of it
would be one lane wide, and it left such a softmax to TVM's unscheduled code (ViT-B/16's 12 x 197
x 197: 7.6 ms a call on one Zen 4 core, AVX2). Other static rows keep -O3's fast_softmax; other
dtypes TVM's legalization. Runs as a LegalizeOps entry (pipeline.py).
"""

from __future__ import annotations

from tvm import te, tirx, topi

from ..._tvm import tvm
from ...passes.fast_math import FAST_LEGALIZATIONS
from .schedule_util import largest_divisor

LANE_BLOCKS = ("T_softmax_lanemax", "T_softmax_lanesum")  # rule_row_reduce.py vectorizes these
TAIL_BLOCKS = ("T_softmax_tail_max", "T_softmax_tail_sum")  # fewer than `lanes`: sequential
MIN_LANES = 4  # a static row whose length has no divisor this large up to `lanes` takes this form


def symbolic_softmax_te(x: te.Tensor, lanes: int) -> te.Tensor:
    """softmax(x, axis=-1) for x whose last dim is symbolic; `lanes` float32 per vector."""
    *rows, length = x.shape
    row_max = _row_reduction(x, length, lanes, te.max, "max")
    delta = te.compute(x.shape, lambda *i: x(*i) - row_max(*i[:-1]), name="T_softmax_delta")
    exp = topi.fast_exp(delta)
    row_sum = _row_reduction(exp, length, lanes, te.sum, "sum")
    return te.compute(x.shape, lambda *i: exp(*i) / row_sum(*i[:-1]), name="T_softmax_norm")


def _row_reduction(x: te.Tensor, length, lanes: int, reducer, name: str) -> te.Tensor:
    """reducer over each row of x: lanes partials over whole vectors, then the lanes and the
    tail (n % lanes elements) folded in."""
    *rows, _ = x.shape
    whole = tirx.floordiv(length, lanes)
    step = te.reduce_axis((0, whole), name="t")
    partials = te.compute(
        (*rows, lanes),
        lambda *i: reducer(x(*i[:-1], step * lanes + i[-1]), axis=step),
        name=f"T_softmax_lane{name}",
    )
    lane = te.reduce_axis((0, lanes), name="v")
    folded = te.compute(rows, lambda *i: reducer(partials(*i, lane), axis=lane),
                        name=f"T_softmax_lanes_{name}")  # fmt: skip
    rest = te.reduce_axis((0, length - whole * lanes), name="r")
    tail = te.compute(rows, lambda *i: reducer(x(*i, whole * lanes + rest), axis=rest),
                      name=f"T_softmax_tail_{name}")  # fmt: skip
    combine = tirx.max if name == "max" else (lambda a, b: a + b)
    return te.compute(rows, lambda *i: combine(folded(*i), tail(*i)), name=f"T_softmax_{name}")


def softmax_legalization(lanes: int, fast: bool):
    """The LegalizeOps entry for relax.nn.softmax: the lanes form where the softmax runs along a
    symbolic last axis in float32, else what the opt level legalizes it to."""

    def legalize(bb, call):
        if _symbolic_last_axis(call) or _no_vector_divisor(call, lanes):
            return bb.call_te(symbolic_softmax_te, call.args[0], lanes,
                              primfunc_name_hint="softmax")  # fmt: skip
        if fast:
            return FAST_LEGALIZATIONS["relax.nn.softmax"](bb, call)
        return tvm.ir.Op.get("relax.nn.softmax").get_attr("FLegalize")(bb, call)

    return legalize


def _symbolic_last_axis(call) -> bool:
    length = _last_axis_length(call)
    return length is not None and not isinstance(length, tirx.IntImm)


def _no_vector_divisor(call, lanes: int) -> bool:
    """A static row of at least a vector, no divisor of which up to `lanes` is MIN_LANES or more."""
    length = _last_axis_length(call)
    if not isinstance(length, tirx.IntImm) or int(length) < lanes:
        return False
    return largest_divisor(int(length), lanes) < MIN_LANES


def _last_axis_length(call):
    """The length of the row a float32 softmax runs along, where it runs along the last axis."""
    values = getattr(getattr(call.args[0].ty, "shape", None), "values", None)
    if not values or str(call.ty.dtype) != "float32":
        return None
    return values[-1] if int(call.attrs.axis) in (-1, len(values) - 1) else None
