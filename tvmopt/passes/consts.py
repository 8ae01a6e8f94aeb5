"""Small facts about Relax expressions that rewrite rules ask: constant values, static shapes."""

from __future__ import annotations

import numpy as np

from .._tvm import tvm


def value(expr) -> np.ndarray:
    """The numpy value of a relax constant."""
    return expr.value.numpy()


def const(array: np.ndarray):
    array = np.require(array, requirements="C")  # unlike ascontiguousarray, keeps 0-d arrays 0-d
    return tvm.relax.const(array, str(array.dtype))  # scalars would otherwise become float32


def static_shape(expr) -> tuple[int, ...] | None:
    """The expression's shape if every dim is a known integer, else None."""
    ty = expr.ty
    shape = getattr(ty, "shape", None)
    if shape is None or not hasattr(shape, "values"):
        return None
    dims = []
    for dim in shape.values:
        if not isinstance(dim, tvm.tirx.IntImm):
            return None
        dims.append(int(dim))
    return tuple(dims)


def dtype(expr) -> str:
    return str(getattr(expr.ty, "dtype", ""))


def is_float(expr) -> bool:
    return dtype(expr).startswith(("float", "bfloat"))


def shape_values(shape_expr) -> tuple[int, ...] | None:
    """A ShapeExpr argument (as reshape takes) as ints, or None if any dim is symbolic."""
    values = getattr(shape_expr, "values", None)
    if values is None or not all(isinstance(v, tvm.tirx.IntImm) for v in values):
        return None
    return tuple(int(v) for v in values)


def broadcast_keeps_shape(expr, other: np.ndarray) -> bool:
    """True when `expr op other` has exactly expr's shape (other only broadcasts into it). A
    symbolic dim of expr (a sequence length) keeps its size against a 1 of other only."""
    shape = known_dims(expr)
    if shape is None or other.ndim > len(shape):
        return False
    aligned = shape[len(shape) - other.ndim :]
    return all(size == 1 or size == dim for size, dim in zip(other.shape, aligned, strict=True))


def known_dims(expr) -> tuple[int | None, ...] | None:
    """The expression's shape with None for each symbolic dim; None if its rank is unknown."""
    shape = getattr(expr.ty, "shape", None)
    if shape is None or not hasattr(shape, "values"):
        return None
    return tuple(int(d) if isinstance(d, tvm.tirx.IntImm) else None for d in shape.values)


def is_constant(expr) -> bool:
    """A tensor constant (relax.const), as opposed to scalar immediates or strings."""
    return isinstance(expr, tvm.ir.GenericConst)
