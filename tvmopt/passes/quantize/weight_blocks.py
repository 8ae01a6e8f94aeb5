"""Weights quantized in blocks along the reduction axis: the format our weight-only quantization
writes and ONNX Runtime's MatMulNBits (and opset 21's blocked DequantizeLinear) carry.

    W[k, n] ~ (levels[k, n] - zeros[k // B, n]) * scales[k // B, n]

levels are unsigned, 0 .. 2^bits - 1, one per byte here; B (the group, MatMulNBits' block_size) is
a divisor of K, so a [K, N] weight has K / B groups per column. In the graph the weight is

    matmul(x, call_tir(dequantize_blocks, (levels, scales, zeros)))

which computes the right numbers anywhere (every opt level, every target) and which a backend
replaces by a kernel that dequantizes as it multiplies (backends/llvm/fuse_weight_only.py). The
dequantization is a TIR function, not Relax arithmetic, so constant folding never turns the
small weight back into a float32 one. The function carries BLOCK_ATTR, the levels' bits, and
INT8_ACTIVATIONS_ATTR where the product may round its activations to int8 per block (ONNX
Runtime's accuracy level 4: backends/llvm/kernel_weight_only_q8.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tvm import relax, te

from ..._tvm import tvm
from ...errors import OptionError
from ..consts import const, is_constant, value

BLOCK_ATTR = "tvmopt.weight_blocks"  # the dequantizing PrimFunc's attribute: the levels' bits
INT8_ACTIVATIONS_ATTR = "tvmopt.int8_activations"  # present: activations may be rounded to int8
GROUP_SIZES = (32, 64, 128)


@dataclass(frozen=True)
class WeightBlocks:
    """A [K, N] weight in blocks of `group` rows: levels uint8 [K, N], scales float32 [G, N],
    zeros uint8 [G, N] (2^(bits-1) everywhere when symmetric). int8_activations: the product may
    round its activations to int8 per group (faster, not float32's result)."""

    levels: np.ndarray
    scales: np.ndarray
    zeros: np.ndarray
    bits: int
    int8_activations: bool = False

    @property
    def group(self) -> int:
        return len(self.levels) // len(self.scales)

    def dequantized(self) -> np.ndarray:
        """The float32 weight, as dequantize_blocks computes it."""
        zeros = np.repeat(self.zeros, self.group, axis=0).astype(np.float32)
        scales = np.repeat(self.scales, self.group, axis=0)
        return (self.levels.astype(np.float32) - zeros) * scales


def check_group(group: int, depth: int, where: str) -> None:
    """Refuse a group that does not divide K: one error, naming the layer."""
    if depth % group:
        raise OptionError(f"group size {group} does not divide K = {depth} of {where}; choose "
                          f"one of {', '.join(map(str, GROUP_SIZES))} that divides it")  # fmt: skip


def quantize_blocks(weight: np.ndarray, bits: int, group: int, symmetric: bool) -> WeightBlocks:
    """`weight` [K, N] in blocks of `group` rows: symmetric (|W| <= 2^(bits-1) - 1 steps about the
    zero point 2^(bits-1)) or asymmetric (each block's [min, max], 0 included, over all levels)."""
    depth, columns = weight.shape
    blocks = weight.astype(np.float32).reshape(depth // group, group, columns)
    top = (1 << bits) - 1
    if symmetric:
        peak = np.abs(blocks).max(axis=1)
        scales = peak / ((1 << (bits - 1)) - 1)
        zeros = np.full(peak.shape, 1 << (bits - 1), np.float32)
    else:
        low, high = np.minimum(blocks.min(axis=1), 0), np.maximum(blocks.max(axis=1), 0)
        scales = (high - low) / top
        zeros = np.clip(np.round(-low / np.where(scales > 0, scales, 1)), 0, top)
    scales = np.where(scales > 0, scales, 1).astype(np.float32)
    levels = np.round(blocks / scales[:, None]) + zeros[:, None]
    levels = np.clip(levels, 0, top).astype(np.uint8).reshape(depth, columns)
    return WeightBlocks(levels, scales, zeros.astype(np.uint8), bits)


def dequantize_blocks(levels, scales, zeros):
    """TE: the float32 weight [K, N] of its blocks."""
    group = levels.shape[0] // scales.shape[0]

    def weight(k, n):
        zero = zeros[k // group, n].astype("float32")
        return (levels[k, n].astype("float32") - zero) * scales[k // group, n]

    return te.compute(levels.shape, weight, name="dequantize_blocks")


def emit_blocks(builder, blocks: WeightBlocks) -> relax.Expr:
    """The call that dequantizes `blocks` (the weight's place in the graph)."""
    attrs = {BLOCK_ATTR: blocks.bits}
    if blocks.int8_activations:
        attrs[INT8_ACTIVATIONS_ATTR] = True
    return builder.call_te(
        dequantize_blocks, const(blocks.levels), const(blocks.scales), const(blocks.zeros),
        primfunc_name_hint="dequantize_blocks", primfunc_attrs=attrs,
    )  # fmt: skip


def blocks_of(mod, expr) -> WeightBlocks | None:
    """The WeightBlocks a call of dequantize_blocks on constants holds, else None."""
    if not isinstance(expr, relax.Call) or expr.op != tvm.ir.Op.get("relax.call_tir"):
        return None
    func = mod[expr.args[0]]
    args = expr.args[1].fields if isinstance(expr.args[1], relax.Tuple) else ()
    if func.attrs is None or BLOCK_ATTR not in func.attrs or len(args) != 3:
        return None
    if not all(is_constant(arg) for arg in args):
        return None
    levels, scales, zeros = (value(arg) for arg in args)
    return WeightBlocks(levels, scales, zeros, int(func.attrs[BLOCK_ATTR]),
                        INT8_ACTIVATIONS_ATTR in func.attrs)  # fmt: skip
