"""Quantization-aware distillation: the student computes with fake int8, as `--quantize int8`
will run it, so that training learns weights that survive the rounding.

The scheme is the one tvmopt's quantizer uses (passes/quantize/spec.py): weights symmetric int8
in [-127, 127] per output channel, activations asymmetric uint8 per tensor (here from each
batch's range, where calibration would use the data's). Rounding passes gradients straight
through (torch's fake_quantize ops)."""

from __future__ import annotations

import torch
from torch import nn

from .converter import OnnxModule

QUANTIZED_OPS = ("MatMul", "Gemm", "Conv")


def fake_int8_weight(w: torch.Tensor, axis: int) -> torch.Tensor:
    """Per-channel symmetric int8 along `axis` (the output channels)."""
    reduce = [d for d in range(w.dim()) if d != axis % w.dim()]
    scale = w.detach().abs().amax(dim=reduce).clamp_min(1e-12) / 127
    zero = torch.zeros_like(scale, dtype=torch.int32)
    return torch.fake_quantize_per_channel_affine(w, scale, zero, axis % w.dim(), -127, 127)


def fake_uint8_activation(x: torch.Tensor) -> torch.Tensor:
    """Per-tensor asymmetric uint8 over the range of `x` (which always includes 0)."""
    low = min(x.detach().min().item(), 0.0)
    high = max(x.detach().max().item(), 0.0)
    scale = max(high - low, 1e-12) / 255
    zero = int(round(-low / scale))
    return torch.fake_quantize_per_tensor_affine(x, scale, zero, 0, 255)


def _weight_axis(node, position: int, w: torch.Tensor) -> int:
    if node.op_type == "Conv":
        return 0
    if node.op_type == "Gemm" and position == 1 and node.attrs.get("transB", 0):
        return 0
    return -1  # MatMul/Gemm B is (K, N): N is the output channel


def quantize_inputs(node, args: list) -> list:
    """The operands of a MatMul/Gemm/Conv as int8 would see them; a Gemm/Conv bias stays."""
    out = list(args)
    for position, value in enumerate(args[:2]):
        if value is None or not value.is_floating_point():
            continue
        if isinstance(value, nn.Parameter) and value.dim() >= 2:
            out[position] = fake_int8_weight(value, _weight_axis(node, position, value))
        else:
            out[position] = fake_uint8_activation(value)
    return out


def enable_fake_quant(module: OnnxModule) -> None:
    for op in QUANTIZED_OPS:
        module.hooks[op] = quantize_inputs
