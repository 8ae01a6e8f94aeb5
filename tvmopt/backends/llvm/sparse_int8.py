"""Quantized matmuls whose int8 weight is sparse run kernel_sparse_int8.py, where the --sparse mode
and the weight's zeros say so (sparse_choice.choose_int8):

    call_tir(int8_matmul, [x [M, K], packed Wq, correction, scale])   (passes/quantize/convert.py)
        -> strided_slice(call_tir(sparse_int8_matmul, [pad(x), data, indices, indptr,
                                  correction, scale]), M rows)

Wq is read back from the dense kernel's packed constant (the int8 step's 16x4 or 8x4 blocks), so
the sparse kernel multiplies the very same int8 values and its sums are the dense kernel's. Only
targets whose int8 step is vpdpbusd (VNNI) have the kernel; elsewhere the layers stay dense and
the record says why. Part of sparse_weights.py's pass, which records every layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tvm import relax

from ..._tvm import tvm
from ...passes.consts import const, static_shape, value
from ...passes.quantize.convert import INT8_MATMUL_ATTR
from ...passes.spans import SpanningBuilder
from ..kernel_record import FLOPS_ATTR
from . import kernel_sparse_int8 as kernels
from .sparse_choice import Choice, choose_int8, int8_structure


@dataclass(frozen=True)
class Int8Matmul:
    """A quantized matmul's call, its int8 weight Wq [K, N], whether the dense kernel runs it on
    vpdpbusd's blocks, and how its activation is quantized: (x dtype, inv_scale, zero point)."""

    call: relax.Call
    rows: int
    weight: np.ndarray
    on_vnni: bool
    quantize: tuple


def int8_matmul(mod, call) -> Int8Matmul | None:
    """The quantized matmul `call` is, or None for any other call."""
    if not isinstance(call, relax.Call) or call.op != tvm.ir.Op.get("relax.call_tir"):
        return None
    func = mod[call.args[0]] if isinstance(call.args[0], tvm.ir.GlobalVar) else None
    if func is None or func.attrs is None or INT8_MATMUL_ATTR not in func.attrs:
        return None
    x, packed = call.args[1].fields[:2]
    (rows, depth), columns = static_shape(x), static_shape(call)[1]
    inv_scale, zero_point = func.attrs[INT8_MATMUL_ATTR]
    packed = value(packed)
    weight = kernels.unpack_dense(packed, depth, columns)
    quantize = (str(x.ty.dtype), float(inv_scale.value), int(zero_point))
    return Int8Matmul(call, rows, weight, kernels.quad_packed(packed), quantize)


def choice_for(layer: Int8Matmul, mode: str, cpu) -> Choice:
    """sparse_choice's choice for the layer on `cpu`: dense without a vpdpbusd step."""
    step = cpu.int8_step
    if not layer.on_vnni or step is None or not step.accumulates or step.activation != "uint8":
        return Choice("dense", 0, 1.0, f"no sparse int8 kernel on {cpu.isa.name} (needs VNNI)")
    return choose_int8(int8_structure(layer.weight), mode, _widths(layer, cpu))


def _widths(layer: Int8Matmul, cpu) -> tuple:
    """The block widths whose accumulators fit the target's registers."""
    lanes, registers = cpu.int8_step.lanes, cpu.isa.vector_registers
    rows, columns = _height(layer.rows, lanes), layer.weight.shape[1]
    return tuple(width for width in kernels.BLOCK_WIDTHS if columns % width == 0
                 and kernels.token_tiling(rows, columns, width, lanes, registers))  # fmt: skip


def _height(rows: int, lanes: int) -> int:
    return -(-rows // lanes) * lanes


def sparse_call(builder_, layer: Int8Matmul, choice: Choice, cpu):
    """The sparse kernel's call in place of the layer's, its rows padded to whole vectors."""
    x, _, correction, scale = layer.call.args[1].fields
    lanes, (depth, columns) = cpu.int8_step.lanes, layer.weight.shape
    height = _height(layer.rows, lanes)
    packed = kernels.pack_quads(layer.weight, choice.width)
    tiling = kernels.token_tiling(height, columns, choice.width, lanes, cpu.isa.vector_registers)
    kernel = kernels.sparse_int8_matmul(height, depth, columns, choice.width, len(packed[1]),
                                        tiling, cpu.int8_step, layer.quantize)  # fmt: skip
    kernel = kernel.with_attr(FLOPS_ATTR, 2 * height * packed[0].size * kernels.QUAD)
    gvar = builder_.add_func(kernel, "sparse_int8_matmul")
    builder = SpanningBuilder(builder_, layer.call.span)
    if height > layer.rows:
        x = builder.emit(relax.op.nn.pad(x, (0, height - layer.rows, 0, 0)))
    args = [x, *map(const, packed), correction, scale]
    y = builder.emit(relax.call_tir(gvar, args, relax.TensorType((height, columns), "float32")))
    if height > layer.rows:
        return relax.op.strided_slice(y, [0], [0], [layer.rows])
    return y
