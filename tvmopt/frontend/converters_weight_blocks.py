"""ONNX Runtime's com.microsoft MatMulNBits: a MatMul whose constant weight is quantized in blocks
along K, imported as our weight-only format (passes/quantize/weight_blocks.py), so that it runs
on the same fused kernels as `quantize="int4-weights"`.

    MatMulNBits(A [..., K], B [N, K/bs, bs*bits/8] uint8, scales [N, K/bs][, zero_points][, g_idx]
                [, bias]; K, N, bits, block_size)
        -> matmul(A, call_tir(dequantize_blocks, (levels, scales, zeros))) [+ bias]

B holds each column's levels block by block, two per byte for 4 bits, low nibble first; zero
points are uint8, packed the same way per column (absent: 2^(bits-1)). A K that is not whole
blocks (B is zero-padded to them) pads A with zeros to match. Float zero points and g_idx (act
order) are refused. accuracy_level 4 lets the product round A to int8 per block, as ONNX
Runtime does.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from tvm import relax
from tvm.relax.frontend.onnx.onnx_frontend import OnnxOpConverter

from ..passes.consts import is_constant, value
from ..passes.quantize.weight_blocks import WeightBlocks, emit_blocks

op = relax.op
ATTRS = ("K", "N", "bits", "block_size")
# accuracy_level 4: ONNX Runtime rounds A to int8 per block and multiplies in integers; so do we
# (kernel_weight_only_q8.py) where the CPU has an int8 dot product
INT8_ACCURACY_LEVEL = 4


def unpack_bytes(packed: np.ndarray, bits: int) -> np.ndarray:
    """uint8 [..., B] -> the [..., B * 8 / bits] values, low bits first."""
    per_byte = 8 // bits
    shifts = np.arange(per_byte, dtype=np.uint8) * bits
    values = (packed[..., None] >> shifts) & ((1 << bits) - 1)
    return values.reshape(*packed.shape[:-1], -1).astype(np.uint8)


def pack_bytes(values: np.ndarray, bits: int) -> np.ndarray:
    """unpack_bytes undone (the last axis padded with zeros to whole bytes)."""
    per_byte = 8 // bits
    padded = np.zeros((*values.shape[:-1], -(-values.shape[-1] // per_byte) * per_byte), np.uint16)
    padded[..., : values.shape[-1]] = values
    split = padded.reshape(*values.shape[:-1], -1, per_byte)
    return (split << (np.arange(per_byte, dtype=np.uint16) * bits)).sum(axis=-1).astype(np.uint8)


def nbits_blocks(packed, scales, zeros, bits: int, block: int) -> WeightBlocks:
    """MatMulNBits' B, scales and uint8 zero points (or None) as WeightBlocks over the padded K."""
    columns, blocks, _ = packed.shape
    levels = unpack_bytes(packed, bits).reshape(columns, blocks * block).T
    if zeros is None:
        zeros = np.full((columns, blocks), 1 << (bits - 1), np.uint8)
    else:
        zeros = unpack_bytes(zeros.reshape(columns, -1), bits)[:, :blocks]
    scales = scales.reshape(columns, blocks).astype(np.float32)
    return WeightBlocks(np.ascontiguousarray(levels), scales.T.copy(), zeros.T.copy(), bits)


class MatMulNBits(OnnxOpConverter):
    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        depth, _, bits, block = (int(attr[name]) for name in ATTRS)
        optional = [*inputs[3:], None, None, None][:3]  # zero_points, g_idx, bias
        zeros, g_idx, bias = optional
        _check(inputs, zeros, g_idx, bits)
        blocks = nbits_blocks(value(inputs[1]), value(inputs[2]),
                              None if zeros is None else value(zeros), bits, block)  # fmt: skip
        if int(attr.get("accuracy_level", 0)) == INT8_ACCURACY_LEVEL:
            blocks = replace(blocks, int8_activations=True)
        x = inputs[0]
        padding = len(blocks.levels) - depth
        if padding:  # B's last block is zero-padded: A gets as many zero columns
            rank = len(x.ty.shape)
            x = bb.normalize(op.nn.pad(x, [0, 0] * (rank - 1) + [0, padding]))
        product = op.matmul(x, bb.normalize(emit_blocks(bb, blocks)))
        return product if bias is None else op.add(bb.normalize(product), bias)


def _check(inputs, zeros, g_idx, bits: int) -> None:
    if bits not in (4, 8):
        raise ValueError(f"MatMulNBits with bits={bits}: only 4 and 8 are supported")
    if not all(is_constant(arg) for arg in inputs[1:3]):
        raise ValueError("MatMulNBits needs constant B and scales (initializers)")
    if zeros is not None and (not is_constant(zeros) or value(zeros).dtype != np.uint8):
        raise ValueError("MatMulNBits' zero_points must be a constant uint8 tensor")
    if g_idx is not None:
        raise ValueError("MatMulNBits with g_idx (act order) is not supported")


OPS = {"MatMulNBits": MatMulNBits}
