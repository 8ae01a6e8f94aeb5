"""Quantized matmuls whose int8 weight is sparse run kernel_sparse_int8.py, where the --sparse mode
and the weight's zeros say so (sparse_choice.choose_int8):

    call_tir(int8_matmul, [x [M, K], packed Wq, correction, scale])   (passes/quantize/convert.py)
        -> strided_slice(call_tir(sparse_int8_matmul, [pad(x), data, indices, indptr,
                                  correction, scale]), M rows)

Wq is read back from the dense kernel's packed constant, so the sparse kernel multiplies the very
same int8 values, on a step that cannot saturate on them (sparse_step), and its sums are the
dense kernel's. Part of sparse_weights.py's pass, which records every layer.
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
    """A quantized matmul's call, its int8 weight Wq [K, N] and how its activation is
    quantized: (x dtype, inv_scale, zero point)."""

    call: relax.Call
    rows: int
    weight: np.ndarray
    quantize: tuple


def int8_matmul(mod, call) -> Int8Matmul | None:
    """The quantized matmul `call` is, or None for any other call."""
    if not isinstance(call, relax.Call) or call.op != tvm.ir.Op.get("relax.call_tir"):
        return None
    func = mod[call.args[0]] if isinstance(call.args[0], tvm.ir.GlobalVar) else None
    if func is None or func.attrs is None or INT8_MATMUL_ATTR not in func.attrs:
        return None
    x, packed = call.args[1].fields[:2]
    if static_shape(x) is None or static_shape(call) is None:  # convert.py makes them static
        return None
    (rows, depth), columns = static_shape(x), static_shape(call)[1]
    inv_scale, zero_point = func.attrs[INT8_MATMUL_ATTR]
    weight = kernels.unpack_dense(value(packed), depth, columns)
    quantize = (str(x.ty.dtype), float(inv_scale.value), int(zero_point))
    return Int8Matmul(call, rows, weight, quantize)


def sparse_step(cpu, weight: np.ndarray):
    """The int8 step the kernel runs Wq on, for `cpu`: its first single-part step exact on Wq
    (vpdpbusd; without VNNI vpmaddubsw where Wq's pairs fit, else vpmaddwd), uint8 or int16
    activations (not sdot's int8); None where it has none."""
    steps = [step for step in cpu.int8_steps if step.parts == 1
             and step.activation in ("uint8", "int16") and step.admits(weight.T)]  # fmt: skip
    return steps[0] if steps else None


def choice_for(layer: Int8Matmul, mode: str, cpu) -> tuple[Choice, object]:
    """(sparse_choice's choice for the layer on `cpu`, the step it runs on)."""
    step = sparse_step(cpu, layer.weight)
    if step is None:
        return Choice("dense", 0, 1.0, f"no sparse int8 kernel on {cpu.isa.name}"), None
    structure = int8_structure(layer.weight, step.depth)
    return choose_int8(structure, mode, _widths(layer, cpu, step), step.depth), step


def _widths(layer: Int8Matmul, cpu, step) -> tuple:
    """The block widths whose accumulators fit the target's registers."""
    registers = kernels.free_registers(step, cpu.isa.vector_registers)
    rows, columns = _height(layer.rows, step.lanes), layer.weight.shape[1]
    return tuple(width for width in kernels.BLOCK_WIDTHS if columns % width == 0
                 and kernels.token_tiling(rows, columns, width, step.lanes, registers))  # fmt: skip


def _height(rows: int, lanes: int) -> int:
    return -(-rows // lanes) * lanes


def sparse_call(builder_, layer: Int8Matmul, choice: Choice, step, cpu):  # noqa: PLR0913
    """The sparse kernel's call on `step` in place of the layer's, its rows padded to whole
    vectors."""
    x, _, correction, scale = layer.call.args[1].fields
    depth, columns = layer.weight.shape
    height = _height(layer.rows, step.lanes)
    packed = kernels.pack_words(layer.weight, choice.width, step.depth)
    registers = kernels.free_registers(step, cpu.isa.vector_registers)
    tiling = kernels.token_tiling(height, columns, choice.width, step.lanes, registers)
    kernel = kernels.sparse_int8_matmul(height, depth, columns, choice.width, len(packed[1]),
                                        tiling, step, layer.quantize)  # fmt: skip
    kernel = kernel.with_attr(FLOPS_ATTR, 2 * height * packed[0].size * step.depth)
    gvar = builder_.add_func(kernel, "sparse_int8_matmul")
    builder = SpanningBuilder(builder_, layer.call.span)
    if height > layer.rows:
        x = builder.emit(relax.op.nn.pad(x, (0, height - layer.rows, 0, 0)))
    args = [x, *map(const, packed), correction, scale]
    y = builder.emit(relax.call_tir(gvar, args, relax.TensorType((height, columns), "float32")))
    if height > layer.rows:
        return relax.op.strided_slice(y, [0], [0], [layer.rows])
    return y
