"""The logistic function 1 / (1 + e^-x) as one rational function of x, for SiLU = x logistic(x):

    logistic(x) = 1/2 + v P(v²) / Q(v²),   v = x clamped to [-CLAMP, CLAMP]

P of degree 3 and Q of degree 4 in v² (Horner, 7 fused multiply-adds), one division: 14 vector
operations with SiLU's product, where 1 / (1 + fast_exp(-x)) takes about 24 (its clamp, range
reduction, degree-6 polynomial, exponent shift, add and division). The count matters where the
function is the epilogue of a conv: there the convs' FMAs are no longer what limits, each
vector operation is, and an AVX2 vector holds half an AVX-512 one's lanes (Zen 4 splits a zmm
operation into two ymm halves, but issues it as one). EfficientNet-B0's 24->144 pointwise conv
on 56x56 with its SiLU (a model of it and a 144->24 conv), Zen 4, 1 thread, least of 60
alternating runs per kernel: AVX2 build 501 -> 359 us (the conv alone: 238 us), AVX-512 build
334 -> 315 us; its 5x5 depthwise conv on 14x14x672 with SiLU 184 -> 151 and 131 -> 116 us.

The coefficients are a least-squares fit of the relative residual with Lawson's weights (so it
approaches minimax) on [0, CLAMP], which bench/fit_logistic.py reproduces; evaluated in float32
they stay within 4e-7 of the logistic everywhere (tests/test_fast_logistic.py), fast_exp's
within 1e-7: close enough for SiLU, not for a recurrent cell's gates, which ONNX's GRU tests
read to 1e-7 of 0 and 1 (sigmoid keeps fast_exp: fast_math.py). Beyond CLAMP = 18 the logistic
is within 2e-8 of 0 or 1.
"""

from __future__ import annotations

from tvm import tirx

CLAMP = 18.0
NUMERATOR = (2.499996e-01, 8.012667e-03, 4.4384513e-05, 4.022558e-08)  # P's, lowest power first
DENOMINATOR = (1.0, 1.153826e-01, 1.4597777e-03, 3.4910588e-06, 8.243692e-10)  # Q's


def horner(coefficients, value):
    """sum of coefficients[k] * value**k (lowest power first), as nested multiply-adds: works
    on a TIR expression and on a float32 numpy array alike."""
    result = coefficients[-1]
    for coefficient in coefficients[-2::-1]:
        result = result * value + coefficient
    return result


def logistic(x):
    """1 / (1 + e^-x) of the float32 TIR expression `x`."""
    v = tirx.max(tirx.min(x, CLAMP), -CLAMP)
    squared = v * v
    return v * horner(NUMERATOR, squared) / horner(DENOMINATOR, squared) + 0.5
