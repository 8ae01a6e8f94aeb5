"""What our converters read and make alike: an ONNX string attribute (bytes, as TVM's importer
parses it) as text, an input the importer holds as a constant scalar, and a scalar constant of a
tensor's dtype."""

from __future__ import annotations

from tvm import relax

from .._tvm import tvm


def text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def scalar_like(expr, value):
    """`value` as a constant of `expr`'s dtype (`expr` typed: bound, or an input)."""
    return relax.const(value, str(expr.ty.dtype))


def constant_int(expr, what: str) -> int:
    """The value of an input that must be a constant scalar (an axis, a position)."""
    if not isinstance(expr, tvm.ir.GenericConst) or expr.value.numpy().size != 1:
        raise ValueError(f"{what} must be a constant scalar")
    return int(expr.value.numpy().reshape(()))
