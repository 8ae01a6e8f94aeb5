"""What our converters read and make alike: an ONNX string attribute (bytes, as TVM's importer
parses it) as text, and a scalar constant of a tensor's dtype."""

from __future__ import annotations

from tvm import relax


def text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def scalar_like(expr, value):
    """`value` as a constant of `expr`'s dtype (`expr` typed: bound, or an input)."""
    return relax.const(value, str(expr.ty.dtype))
