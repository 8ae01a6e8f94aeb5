"""Vectorizable approximations of transcendental functions (-O3), as legalizations.

    nn.gelu(x) -> x * 0.5 * (1 + fast_erf(x / √2))
    exp, erf, tanh -> fast_exp, fast_erf, fast_tanh          nn.softmax -> fast_softmax
    sigmoid(x) -> logistic(x)                                 nn.silu(x) -> x * logistic(x)
    (logistic: a rational function of x, fast_logistic.py)

Plain erf lowers to one scalar libm call per element: BERT-base spent 3.7 ms per layer in its
GELU alone. Sigmoid's exp the same: EfficientNet-B0's 1x1 conv 24->144 @56 with its SiLU took
4.0 ms, 1.0 ms with fast_exp (Zen 4, 1 thread, profiled). TOPI's fast versions are polynomials
that vectorize, and stay far inside our 1e-4 accuracy bound (every model test compares against
ONNX Runtime). As legalizations they apply inside fused groups too; TVM's FastMathTransform pass
cannot, it fails on calls of fused functions. Other dtypes than float32 keep TVM's default
legalization.
"""

from __future__ import annotations

import math

from tvm import te, tirx, topi

from .._tvm import tvm
from .fast_logistic import logistic


def _gelu_te(x):
    scaled = te.compute(x.shape, lambda *i: x(*i) * (1 / math.sqrt(2)), name="scaled")
    erf = topi.fast_erf(scaled)
    return te.compute(x.shape, lambda *i: x(*i) * 0.5 * (1 + erf(*i)), name="gelu")


def _logistic_te(x, silu: bool):
    """logistic(x) (sigmoid), or x times it (SiLU), as one rational function of x
    (fast_logistic.py): where 1 / (1 + fast_exp(-x)) took about 24 vector operations, it takes
    14, which is what an AVX2 epilogue pays for (see fast_logistic.py)."""
    if silu:
        return te.compute(x.shape, lambda *i: x(*i) * logistic(x(*i)), name="silu")

    def gate(*i):  # its rounding may step a hair outside [0, 1]: a gate stays a gate
        return tirx.max(tirx.min(logistic(x(*i)), 1.0), 0.0)

    return te.compute(x.shape, gate, name="sigmoid")


def silu(x):  # the kernel's name comes from the function's
    return _logistic_te(x, silu=True)


def sigmoid(x):
    return _logistic_te(x, silu=False)


def _softmax_te(x, axis):
    return topi.nn.fast_softmax(x, axis)


FAST_TE = {
    "relax.nn.gelu": lambda call: (_gelu_te, call.args[0]),
    "relax.nn.softmax": lambda call: (_softmax_te, call.args[0], int(call.attrs.axis)),
    "relax.exp": lambda call: (topi.fast_exp, call.args[0]),
    "relax.erf": lambda call: (topi.fast_erf, call.args[0]),
    "relax.tanh": lambda call: (topi.fast_tanh, call.args[0]),
    "relax.sigmoid": lambda call: (sigmoid, call.args[0]),
    "relax.nn.silu": lambda call: (silu, call.args[0]),
}


def _legalize_fast(bb, call):
    if str(call.ty.dtype) != "float32":
        return tvm.ir.Op.get(call.op.name).get_attr("FLegalize")(bb, call)
    return bb.call_te(*FAST_TE[call.op.name](call))


FAST_LEGALIZATIONS = {name: _legalize_fast for name in FAST_TE}
