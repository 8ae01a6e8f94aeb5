"""Pow for every pair of ONNX types, where TVM's converter wants both of one float type; Mod of
floats with numpy's floor semantics at the edges; BitShift by amounts outside [0, width).

    Pow(x: float, y: any)  -> power(x, float(y))
    Pow(x: int, y: float)  -> int(power(double(x), double(y)))   (truncated, as numpy's astype)
    Pow(x: int, y: int)    -> x**y by binary exponentiation, exact (wrapping as numpy does)

ONNX's Pow takes base and exponent of different types and gives the base's type. TVM's importer
refused mixed types and compiled an integer Pow to a float power that LLVM rejects. Integer
powers are exact here: a kernel of ours loops over the exponent's bits, squaring and multiplying
(unrolled into one TE expression, the squares blow up in TVM's simplifier). A negative integer
exponent gives the truncated real power, as ONNX Runtime (a C cast of pow) does: 1 for base 1,
+-1 for base -1, 0 for any other base.

    Mod(x: float, y: float, fmod=0) -> m = fmod(x, y); m + y where m and y differ in sign

ONNX's float Mod without fmod is numpy's mod: its result takes the divisor's sign. TVM's floor
mod, x - floor(x / y) * y, is nan where y is infinite (0 * inf); C's fmod is exact there and
keeps x, and shifting by y where the signs differ gives numpy's answer (x + inf = inf), as numpy
computes it (npy_divmod). A zero result takes the divisor's sign too.
"""

from __future__ import annotations

import numpy as np
from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend

from .._tvm import tvm
from .converter_values import scalar_like, text

op = relax.op
tirx = tvm.tirx


class Pow(onnx_frontend.Pow):
    @classmethod
    def _impl_v7(cls, bb, inputs, attr, params):
        base, exponent = inputs
        base_type, exponent_type = str(base.ty.dtype), str(exponent.ty.dtype)
        if _is_float(base_type):
            if exponent_type != base_type:
                exponent = op.astype(exponent, base_type)
            return super()._impl_v7(bb, [base, exponent], attr, params)
        if _is_float(exponent_type):
            real = op.power(op.astype(base, "float64"), op.astype(exponent, "float64"))
            return op.astype(real, base_type)
        return _integer_power(bb, base, exponent)


def _integer_power(bb, base, exponent):
    """Both broadcast to the output shape and flattened, then one kernel's loop per element."""
    shape = _broadcast_shape(base, exponent)
    count = int(np.prod(shape, dtype=np.int64))
    base_type, exponent_type = str(base.ty.dtype), str(exponent.ty.dtype)
    flat = [op.reshape(op.broadcast_to(x, shape), (count,)) for x in (base, exponent)]
    kernel = bb.add_func(_power_kernel(count, base_type, exponent_type), "integer_power")
    power = relax.call_tir(kernel, flat, relax.TensorType((count,), base_type))
    return op.reshape(bb.normalize(power), shape)


def _power_kernel(count: int, dtype: str, exponent_dtype: str):
    from tvm.script.parser import tirx as T

    bits = tvm.runtime.DataType(exponent_dtype).bits

    @T.prim_func(private=True, s_tir=True)
    def kernel(
        base: T.Buffer((count,), dtype),
        exponent: T.Buffer((count,), exponent_dtype),
        out: T.Buffer((count,), dtype),
    ):
        # one opaque block: the Relax pipeline wants a block-structured PrimFunc
        with T.sblock("integer_power"):
            square = T.decl_buffer((1,), dtype, scope="local")  # base**(2**k)
            product = T.decl_buffer((1,), dtype, scope="local")
            for i in T.serial(count):
                square[0] = base[i]
                product[0] = T.Cast(dtype, 1)
                for k in T.serial(bits):
                    if (exponent[i] >> T.Cast(exponent_dtype, k)) & T.Cast(exponent_dtype, 1) != 0:
                        product[0] = product[0] * square[0]
                    square[0] = square[0] * square[0]
                out[i] = T.Select(
                    exponent[i] < T.Cast(exponent_dtype, 0),
                    _negative_power(base[i], exponent[i], dtype, exponent_dtype),
                    product[0],
                )

    return kernel


def _negative_power(base, exponent, dtype: str, exponent_dtype: str):
    """The truncated real power for exponent < 0: 1/base**n keeps only +-1 from 0."""
    if dtype.startswith("uint"):
        return tirx.Select(base == tirx.const(1, dtype), base, tirx.const(0, dtype))
    odd = (exponent & tirx.const(1, exponent_dtype)) != tirx.const(0, exponent_dtype)
    minus_one = tirx.Select(odd, tirx.const(-1, dtype), tirx.const(1, dtype))
    zero_or_sign = tirx.Select(base == tirx.const(-1, dtype), minus_one,
                               tirx.const(0, dtype))  # fmt: skip
    return tirx.Select(base == tirx.const(1, dtype), tirx.const(1, dtype), zero_or_sign)


def _broadcast_shape(*exprs) -> list[int]:
    shapes = [[int(dim) for dim in expr.ty.shape] for expr in exprs]
    return list(np.broadcast_shapes(*shapes))


def _is_float(dtype: str) -> bool:
    return dtype.startswith(("float", "bfloat"))


class Mod(onnx_frontend.Mod):
    @classmethod
    def _impl_v10(cls, bb, inputs, attr, params):
        x, y = inputs
        if attr.get("fmod", 0) or not _is_float(str(x.ty.dtype)):
            return super()._impl_v10(bb, inputs, attr, params)
        remainder = bb.normalize(op.mod(x, y))  # C fmod: the dividend's sign
        zero = relax.const(0, str(x.ty.dtype))
        signs_differ = op.logical_xor(op.less(remainder, zero), op.less(y, zero))
        shifted = op.where(op.logical_and(op.not_equal(remainder, zero), signs_differ),
                           op.add(remainder, y), remainder)  # fmt: skip
        signed_zero = op.where(op.less(y, zero), op.negative(zero), zero)
        return op.where(op.equal(remainder, zero), signed_zero, shifted)


class BitShift(onnx_frontend.BitShift):
    """Shifts of a width or more, or by a negative amount, give what onnx's reference gives (0;
    -1 for a negative signed value shifted right): LLVM leaves them undefined, and on AVX2 they
    came out as the unshifted value."""

    @classmethod
    def _impl_v11(cls, bb, inputs, attr, params):
        x, amount = inputs[0], inputs[1]
        if isinstance(x, tvm.ir.GenericConst) and isinstance(amount, tvm.ir.GenericConst):
            return super()._impl_v11(bb, inputs, attr, params)  # folded by numpy
        width = np.iinfo(str(x.ty.dtype)).bits
        outside = op.logical_or(op.less(amount, scalar_like(amount, 0)),
                                op.greater_equal(amount, scalar_like(amount, width)))  # fmt: skip
        safe = op.where(outside, scalar_like(amount, 0), amount)
        left = text(attr.get("direction", b"LEFT")) == "LEFT"
        shifted = (op.left_shift if left else op.right_shift)(x, safe)
        fill = op.zeros_like(x)
        if not left and str(x.ty.dtype).startswith("int"):
            fill = op.where(op.less(x, scalar_like(x, 0)), scalar_like(x, -1), fill)
        return op.where(outside, fill, shifted)


OPS = {"Pow": Pow, "Mod": Mod, "BitShift": BitShift}
