"""Recognize activations that exporters spell out element by element, so that fusion and the
schedule rules see one op instead of five.

    x * (erf(x / √2) + 1) * 0.5 -> gelu(x)      (also x * 1/√2, and the products in any order)
    x * sigmoid(x) -> silu(x)

ONNX before opset 20 has no Gelu; torch.onnx writes the erf form above. Runs before
fold_scale_shift, which would turn the division by √2 into a multiplication (also recognized).
"""

from __future__ import annotations

import math

from tvm import relax
from tvm.relax.dpl import is_const, is_op, wildcard

from .consts import value
from .rewrite import Rule, rule_pass

_x, _scale, _one, _half = wildcard(), is_const(), is_const(), is_const()
_erf_input = is_op("relax.divide")(_x, _scale) | is_op("relax.multiply")(_x, _scale)
_erf_plus_one = is_op("relax.add")(is_op("relax.erf")(_erf_input), _one)
_mul = is_op("relax.multiply")
GELU_ORDERINGS = (
    _mul(_mul(_x, _erf_plus_one), _half),  # (x * (erf + 1)) * 0.5
    _mul(_x, _mul(_erf_plus_one, _half)),  # x * ((erf + 1) * 0.5)
    _mul(_mul(_x, _half), _erf_plus_one),  # (x * 0.5) * (erf + 1)
)


def _close(const_expr, expected: float) -> bool:
    array = value(const_expr)
    return array.size == 1 and math.isclose(float(array.reshape(())), expected, rel_tol=1e-4)


def _gelu(expr, m):
    divides = m[_erf_input].op.name == "relax.divide"
    scale_ok = _close(m[_scale], math.sqrt(2) if divides else 1 / math.sqrt(2))
    if scale_ok and _close(m[_one], 1.0) and _close(m[_half], 0.5):
        return relax.op.nn.gelu(m[_x])
    return None


def _silu(expr, m):
    return relax.op.nn.silu(m[_x])


RULES = [Rule(f"gelu_erf_{i}", pattern, _gelu) for i, pattern in enumerate(GELU_ORDERINGS)]
RULES.append(Rule("silu", _mul(_x, is_op("relax.sigmoid")(_x)), _silu))  # x*sigmoid(x)

RecognizeActivations = rule_pass("tvmopt.RecognizeActivations", RULES)
