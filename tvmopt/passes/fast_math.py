"""Vectorizable approximations of transcendental functions (-O3), as legalizations.

    nn.gelu(x) -> x * 0.5 * (1 + fast_erf(x / √2))
    exp, erf, tanh -> fast_exp, fast_erf, fast_tanh          nn.softmax -> fast_softmax
    sigmoid(x) -> 1 / (1 + fast_exp(-x))                      nn.silu(x) -> x * logistic(x)
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

from tvm import te, topi

from .._tvm import tvm
from .fast_logistic import logistic


def _gelu_te(x):
    scaled = te.compute(x.shape, lambda *i: x(*i) * (1 / math.sqrt(2)), name="scaled")
    erf = topi.fast_erf(scaled)
    return te.compute(x.shape, lambda *i: x(*i) * 0.5 * (1 + erf(*i)), name="gelu")


def _logistic_te(x, silu: bool):
    """SiLU as x times one rational function of x (fast_logistic.py): where x / (1 +
    fast_exp(-x)) took about 24 vector operations, it takes 14, which an AVX2 conv epilogue
    pays for. Sigmoid keeps 1 / (1 + fast_exp(-x)): a recurrent cell's gates read it to within
    1e-7 of 0 and 1 (ONNX's GRU tests), where the rational one is 3.5e-7 off. fast_exp clamps
    its argument, so a large -x leaves a large finite denominator, and the result goes to 0."""
    if silu:
        return te.compute(x.shape, lambda *i: x(*i) * logistic(x(*i)), name="silu")
    negated = te.compute(x.shape, lambda *i: -x(*i), name="negated")
    exp = topi.fast_exp(negated)
    return te.compute(x.shape, lambda *i: 1.0 / (1 + exp(*i)), name="sigmoid")


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
