"""The weight-only matmul in integer arithmetic: activations rounded to int8 per group of the
weight's blocks (as ONNX Runtime's MatMulNBits at accuracy level 4 and llama.cpp's Q4_0 x Q8_0),
dot products on the target's int8 dot-product instruction (cpu.py's Int8Step).

    xs[m, g]    = max over the group of |x[m, k]| / 127,    q[m, k] = round(x[m, k] / xs[m, g])
    dot[m, g, n] = sum over the group's k of q[m, k] * level[k, n]          (int32, exact)
    y[m, n]     = sum over g of xs[m, g] * scales[g, n] * (dot[m, g, n] - zeros[g, n] * qsum[m, g])

where qsum[m, g] is the group's sum of q. The weight's blocks are the same as the float kernel's
(kernel_weight_only.py); only x is rounded, to 8 bits per group, so the result differs from the
float kernel's by that rounding (about 1/254 of the group's largest |x| per value).

The step: levels are unsigned (int4: 0..15, int8: 0..255), q signed, which is the operand order
of vpdpbusd (uint8 x int8, summed in fours into int32 lanes) and of vpmaddubsw (the same in int16
pairs, then vpmaddwd by ones into int32: int4 levels only, whose pairs stay far within int16).
Levels are packed for it in tasks of C vectors of L output columns (L: the step's int32 lanes,
C from the register budget): per step of 8 rows (int4) or 4 rows (int8), lane l of vector c
holds 4 bytes, the levels of rows k..k+3 of its column; an int4 byte holds row k + i in its low
nibble and row k + 4 + i in its high one. A step over 8 rows loads one vector of bytes, takes
the low nibbles with a mask and the high ones with a shift, and runs two dot-product steps
against q's rows k..k+3 and k+4..k+7, each broadcast as one 32-bit word.
"""

from __future__ import annotations

import numpy as np
from tvm.script import tirx as T

from ..kernel_record import RULE_KEY
from .cpu import CPU, Int8Step
from .intrin_int8 import _llvm

QMAX = 127  # q's range, symmetric: -127..127 (ONNX Runtime's and llama.cpp's)
STEP_DEPTH = 4  # rows per 32-bit lane of the dot-product step


def dot_step(cpu: CPU, bits: int) -> Int8Step | None:
    """The uint8 x int8 step that multiplies `bits` levels by int8 q exactly, or None (then the
    float kernel runs): vpdpbusd for both widths, vpmaddubsw for int4 (255 x 127 x 2 saturates
    int16, 15 x 127 x 4 does not)."""
    for step in cpu.int8_steps:
        if step.activation != "uint8" or step.weight != "int8" or step.parts != 1:
            continue
        if step.accumulates or (bits == 4 and step.pair_sum is not None):  # noqa: PLR2004
            return step
    return None


def column_vectors(cpu: CPU) -> int:
    """C: vectors of output columns per task. Each holds an int32 and a float32 accumulator and
    its unpacked levels pass through registers too: a third of the accumulator budget, rounded
    down to a power of two so that common widths (768, 3072) are whole tasks."""
    budget = max(cpu.accumulators // 3, 1)
    return 1 << (budget.bit_length() - 1)


def rows_per_step(bits: int) -> int:
    return STEP_DEPTH * 8 // bits  # int4: two per byte


def task_width(step: Int8Step, vectors: int) -> int:
    return step.lanes * vectors


def padded_columns(columns: int, width: int) -> int:
    return -(-columns // width) * width


def pack_q8_levels(levels: np.ndarray, bits: int, width: int) -> np.ndarray:
    """[K, N] uint8 levels -> [N / W, K / S, W * 4] uint8, W = L x C the task's columns and S the
    rows per step (the module docstring); columns padded with zero levels."""
    depth, columns = levels.shape
    padded = np.zeros((depth, padded_columns(columns, width)), np.uint8)
    padded[:, :columns] = levels
    step = rows_per_step(bits)
    # [K / S, S / 4 (halves), 4, tasks, W] -> [tasks, K / S, W, halves, 4]
    blocks = padded.reshape(depth // step, step // STEP_DEPTH, STEP_DEPTH, -1, width)
    blocks = blocks.transpose(3, 0, 4, 1, 2)
    if bits == 4:  # noqa: PLR2004
        blocks = blocks[:, :, :, 0] | (blocks[:, :, :, 1] << 4)
    return np.ascontiguousarray(blocks.reshape(blocks.shape[0], depth // step, width * STEP_DEPTH))


def pack_q8_groups(array: np.ndarray, width: int) -> np.ndarray:
    """Scales or zeros [G, N] -> [N / W, G, W], columns padded with zeros."""
    groups, columns = array.shape
    padded = np.zeros((groups, padded_columns(columns, width)), array.dtype)
    padded[:, :columns] = array
    return np.ascontiguousarray(padded.reshape(groups, -1, width).transpose(1, 0, 2))


def q8_matmul(depth: int, groups: int, width_total: int, bits: int, step: Int8Step,
              vectors: int):  # fmt: skip
    """The kernel: x [M, K] float32 (M symbolic) times packed blocks -> y [M, N / W * W]."""
    lanes, group = step.lanes, depth // groups
    width, per_step = lanes * vectors, rows_per_step(bits)
    tasks, steps, word = width_total // width, group // per_step, lanes * STEP_DEPTH
    dot = _dot(step, bits)

    @T.prim_func(private=True, s_tir=True)
    def kernel(
        x_handle: T.handle,
        packed: T.Buffer((tasks, depth // per_step, width * STEP_DEPTH), "uint8"),
        scales: T.Buffer((tasks, groups, width), "float32"),
        zeros: T.Buffer((tasks, groups, width), "uint8"),
        y_handle: T.handle,
    ):
        T.func_attr({"tirx.is_scheduled": True, "tirx.noalias": True})
        rows = T.int64()
        x = T.match_buffer(x_handle, (rows, depth), "float32")
        y = T.match_buffer(y_handle, (rows, width_total), "float32")
        with T.sblock("root"):
            T.sblock_attr({RULE_KEY: "WeightOnlyQ8"})
            q = T.alloc_buffer((rows, depth), "int8")
            xs = T.alloc_buffer((rows, groups), "float32")
            qsum = T.alloc_buffer((rows, groups), "float32")
            _quantize_rows(x, q, xs, qsum, rows, groups, group)
            for t in T.parallel(tasks):
                for m in T.serial(rows):
                    out = T.decl_buffer((width,), "float32")
                    acc = T.decl_buffer((width,), "int32")
                    for v in T.vectorized(width):
                        out[v] = T.float32(0)
                    for g in T.serial(groups):
                        for v in T.vectorized(width):
                            acc[v] = 0
                        for s in T.serial(steps):
                            for c in T.unroll(vectors):
                                acc[T.ramp(c * lanes, 1, lanes)] = dot(
                                    acc[T.ramp(c * lanes, 1, lanes)],
                                    packed[t, g * steps + s, T.ramp(c * word, 1, word)],
                                    q, m, (g * steps + s) * per_step,
                                )  # fmt: skip
                        for v in T.vectorized(width):
                            out[v] = out[v] + xs[m, g] * scales[t, g, v] * (
                                T.Cast("float32", acc[v])
                                - T.Cast("float32", zeros[t, g, v]) * qsum[m, g]
                            )
                    for v in T.vectorized(width):
                        y[m, t * width + v] = out[v]

    return kernel


@T.macro(hygienic=False)
def _quantize_rows(x, q, xs, qsum, rows, groups, group):
    """xs, q and qsum of each row's groups (the module docstring)."""
    for m, g in T.grid(rows, groups):
        peak = T.decl_buffer((1,), "float32")
        total = T.decl_buffer((1,), "int32")
        peak[0] = T.float32(0)
        total[0] = 0
        for r in T.serial(group):
            peak[0] = T.max(peak[0], T.fabs(x[m, g * group + r]))
        xs[m, g] = peak[0] / T.float32(QMAX)
        for r in T.serial(group):  # x times 1 / xs, as ONNX Runtime's MLAS rounds A
            q[m, g * group + r] = T.Cast("int8", T.nearbyint(
                x[m, g * group + r] * T.if_then_else(peak[0] > 0, T.float32(1) / xs[m, g],
                                                     T.float32(0))))  # fmt: skip
            total[0] = total[0] + T.Cast("int32", q[m, g * group + r])
        qsum[m, g] = T.Cast("float32", total[0])


def _dot(step: Int8Step, bits: int):
    """(accumulator, packed bytes, q, row, first k) -> the accumulator after one step's rows."""
    lanes = step.lanes
    operand = f"int8x{lanes * STEP_DEPTH}"

    def word(q, m, k):
        """q[m, k..k+3] as one int32, broadcast to every lane, as the step's operand."""
        value = T.reinterpret(q[m, T.ramp(k, 1, STEP_DEPTH)], dtype="int32")
        return T.reinterpret(T.broadcast(value, lanes), dtype=operand)

    def pairs(levels, q_word):
        return _llvm(step.llvm_intrinsic, f"int16x{2 * lanes}", levels, q_word)

    def combine(acc, parts):
        """parts: (levels, q word) of the step; both as the intrinsic's int8 operands."""
        if step.accumulates:
            for levels, q_word in parts:
                acc = _llvm(step.llvm_intrinsic, f"int32x{lanes}", acc, levels, q_word)
            return acc
        total = pairs(*parts[0])
        for levels, q_word in parts[1:]:
            total = total + pairs(levels, q_word)
        ones = T.broadcast(T.int16(1), 2 * lanes)
        return acc + _llvm(step.pair_sum, f"int32x{lanes}", total, ones)

    def dot(acc, packed_bytes, q, m, k):
        if bits == 8:  # noqa: PLR2004
            return combine(acc, [(T.reinterpret(packed_bytes, dtype=operand), word(q, m, k))])
        mask = T.broadcast(T.uint8(0x0F), lanes * STEP_DEPTH)
        low = T.reinterpret(T.bitwise_and(packed_bytes, mask), dtype=operand)
        high = T.reinterpret(
            T.shift_right(packed_bytes, T.broadcast(T.uint8(4), lanes * STEP_DEPTH)), dtype=operand
        )
        return combine(acc, [(low, word(q, m, k)), (high, word(q, m, k + STEP_DEPTH))])

    return dot
