"""round(x) legalized so that it vectorizes on CPUs: the requantization in every int8 epilogue.

TOPI's round is tirx.nearbyint, which TVM 0.27 does not mark vectorizable: a loop that holds it
is lowered one element at a time, and each int8 layer's requantization (requantize.py: multiply,
round, add the zero point, clip) ran as 16 scalar conversions per vector of outputs. MobileNetV2's
32->16 pointwise conv spent 172 us in model against 27 us with the same loop vectorized.

tirx.round is vectorizable and on LLVM lowers to the same instruction (vrndscaleps in the
default rounding mode: ties to even, as ONNX's Round and QuantizeLinear specify). CUDA would
lower it to roundf, ties away from zero, so this is for the CPU pipeline only.
"""

from __future__ import annotations

from tvm import te, tirx


def round_te(x):
    return te.compute(x.shape, lambda *i: tirx.round(x(*i)), name="round")


def _legalize_round(bb, call):
    return bb.call_te(round_te, call.args[0], primfunc_name_hint="round")


VECTOR_ROUND = {"relax.round": _legalize_round}
