"""float16 matmuls and softmaxes compute in float32 on the CPU, rounded to float16 once at the end.

    matmul(a: f16, b: f16)  -> astype(matmul(a, b, out_dtype="float32"), "float16")
    softmax(x: f16)         -> astype(softmax(astype(x, "float32")), "float16")

TOPI's float16 matmul accumulates in float16: every partial sum rounds to 11 bits, and a
64-term dot product is off by several units in the last place. ONNX Runtime and numpy
accumulate in float32 and round once; onnx's float16 attention tests hold us to that. CPUs
without AVX512-FP16 have no float16 arithmetic anyway (each op converts to float32 and back),
so the float32 form costs nothing there. Runs in the CPU lowering of every opt level.
"""

from __future__ import annotations

from tvm import relax
from tvm.relax.dpl import is_op, wildcard

from .rewrite import Rule, rule_pass

_a, _b, _x = wildcard(), wildcard(), wildcard()


def _is_half(expr) -> bool:
    return str(expr.ty.dtype) == "float16"


def _matmul_in_float32(expr, m):
    if not (_is_half(m[_a]) and _is_half(m[_b]) and _is_half(expr)):
        return None
    product = relax.op.matmul(m[_a], m[_b], out_dtype="float32")
    return relax.op.astype(product, "float16")


def _softmax_in_float32(expr, m):
    if not _is_half(m[_x]):
        return None
    wide = relax.op.nn.softmax(relax.op.astype(m[_x], "float32"), axis=expr.attrs.axis)
    return relax.op.astype(wide, "float16")


RULES = [
    Rule("matmul_in_float32", is_op("relax.matmul")(_a, _b), _matmul_in_float32),
    Rule("softmax_in_float32", is_op("relax.nn.softmax")(_x), _softmax_in_float32),
]

HalfAccumulate = rule_pass("tvmopt.HalfAccumulate", RULES)
