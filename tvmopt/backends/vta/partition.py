"""Offload int8 conv layers to VTA; everything else stays on the CPU.

    y = astype(clip(right_shift(conv2d(x, W) + bias + 2^(n-1), n), -127, 127) [max 0], int8)
      -> y = call_dps_packed("tvmopt.vta.conv2d", x, insns, dram, meta)

x int8 (1, C, H, W), W an int8 constant, conv2d to int32 (NCHW, OIHW, groups and dilation 1,
square kernel, padding up to 15), bias an int32 constant: the layer VTA computes with GEMM and
its ALU chain (reference section 7), compiled here into a program (lower_conv.py) that the
packed function runs on the simulator. A match VTA cannot take (too few input channels to fill
a block, a tiling that does not fit, ...) stays on the CPU, and the report says why. Runs on
integer Relax, before legalization.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
from tvm import relax
from tvm.relax.dpl import is_const, is_op, rewrite_call, wildcard

from ..._tvm import tvm
from ...errors import VTAError
from ...passes.consts import const, static_shape, value
from .config import DEFAULT, VTAConfig
from .isa import elem_bytes, encode_stream
from .lower_conv import lower_conv
from .requantize import Requantize
from .runtime import CONFIG_FIELDS, FUNCTION


@dataclass
class LayerPlacement:
    layer: int
    shape: str
    device: str  # "vta" or "cpu"
    reason: str = ""


@dataclass
class PartitionReport:
    layers: list[LayerPlacement] = field(default_factory=list)

    def records(self) -> list[dict]:
        return [dataclasses.asdict(p) for p in self.layers]

    @classmethod
    def from_records(cls, records: list[dict]) -> PartitionReport:
        return cls([LayerPlacement(**r) for r in records])

    def __str__(self) -> str:
        lines = [f"{'layer':>5}  {'conv':<34} device  why"]
        for p in self.layers:
            lines.append(f"{p.layer:>5}  {p.shape:<34} {p.device:<6}  {p.reason}")
        return "\n".join(lines)


class _Patterns:
    def __init__(self):
        self.x, self.weight, self.bias = wildcard(), is_const(), is_const()
        self.round, self.shift, self.zero = is_const(), is_const(), is_const()
        self.conv = is_op("relax.nn.conv2d")(self.x, self.weight)
        acc = is_op("relax.add")(self.conv, self.bias)
        shifted = is_op("relax.right_shift")(is_op("relax.add")(acc, self.round), self.shift)
        self.clip = is_op("relax.clip")(shifted, wildcard(), wildcard())
        self.relu = is_op("relax.maximum")(self.clip, self.zero)
        self.layer = is_op("relax.astype")(self.relu | self.clip)


def partition(
    mod: tvm.IRModule, config: VTAConfig = DEFAULT
) -> tuple[tvm.IRModule, PartitionReport]:
    """`mod` with its VTA-able conv layers offloaded, and what went where."""
    report = PartitionReport()
    patterns = _Patterns()
    declined: dict = {}  # conv -> its placement: rewrite_call offers a declined match again

    def rewrite(expr, matches):
        conv = matches[patterns.conv]
        if conv in declined:
            return expr
        index = len(report.layers)
        try:
            call, shape = _offload(expr, matches, patterns, config, index)
        except _Decline as reason:
            declined[conv] = LayerPlacement(index, reason.shape, "cpu", str(reason))
            report.layers.append(declined[conv])
            return expr
        report.layers.append(LayerPlacement(index, shape, "vta", "int8 conv with requantization"))
        return call

    out = tvm.IRModule(mod.functions)
    for gvar, func in mod.functions.items():
        if isinstance(func, relax.Function):
            out[gvar] = rewrite_call(patterns.layer, rewrite, func)
    return out, report


class _Decline(Exception):
    def __init__(self, reason: str, shape: str = ""):
        super().__init__(reason)
        self.shape = shape


def _offload(expr, matches, p: _Patterns, config: VTAConfig, index: int):
    conv, x = matches[p.conv], matches[p.x]
    weight = value(matches[p.weight])
    stride = int(conv.attrs.strides[0])
    size = "x".join(str(d) for d in static_shape(x)[1:])
    shape = f"{size} -> {weight.shape[0]}, {weight.shape[2]}x{weight.shape[3]} s{stride}"
    stride, padding = _check_conv(conv, x, weight, shape, config)
    requantize = _requantize(matches, p, shape, relu=p.relu in matches)
    bias = _bias(value(matches[p.bias]), weight.shape[0], shape)
    x_shape = list(static_shape(x))
    placeholder = np.zeros(x_shape[1:], np.int8)
    try:  # a layer this VTA cannot hold (tiling, an instruction field) stays on the CPU
        program = lower_conv(placeholder, weight, bias, stride, padding, requantize, config)
        stream = np.frombuffer(encode_stream(program.insns, config), np.uint8)
    except VTAError as err:
        raise _Decline(str(err), shape) from None
    out_shape = list(static_shape(expr))
    meta = _meta(program, config, x_shape, out_shape, index)
    args = [x, const(stream), const(program.dram), const(meta)]
    call = relax.call_dps_packed(FUNCTION, args, relax.TensorType(out_shape, "int8"))
    return call, shape


def _check_conv(conv, x, weight, shape, config):
    attrs = conv.attrs
    stride, padding = [int(s) for s in attrs.strides], [int(q) for q in attrs.padding]
    problems = {
        "input is not int8": x.ty.dtype != "int8",
        "conv does not accumulate in int32": str(attrs.out_dtype) != "int32",
        "batch is not 1": static_shape(x)[0] != 1,
        "grouped or dilated": int(attrs.groups) != 1 or any(int(d) != 1 for d in attrs.dilation),
        "not NCHW/OIHW": (attrs.data_layout, attrs.kernel_layout) != ("NCHW", "OIHW"),
        "not a square kernel, stride and padding": weight.shape[2] != weight.shape[3]
        or len(set(stride)) != 1 or len(set(padding)) != 1,
        f"{weight.shape[1]} input channels fill under half of a {config.block}-lane block":
            weight.shape[1] * 2 <= config.block,
    }  # fmt: skip
    reason = next((why for why, bad in problems.items() if bad), None)
    if reason is not None:
        raise _Decline(reason, shape)
    return stride[0], padding[0]


def _requantize(matches, p: _Patterns, shape: str, relu: bool) -> Requantize:
    shift = int(value(matches[p.shift]))
    clip = matches[p.clip]
    bounds = (int(clip.args[1].value), int(clip.args[2].value))
    if shift < 1 or int(value(matches[p.round])) != 1 << (shift - 1):
        raise _Decline("not a round-half-up shift", shape)
    if bounds != (-127, 127) or (relu and int(value(matches[p.zero])) != 0):
        raise _Decline(f"clips to {bounds}, not (-127, 127)", shape)
    return Requantize(shift=shift, relu=relu)


def _bias(bias: np.ndarray, channels: int, shape: str) -> np.ndarray:
    if bias.dtype != np.int32 or bias.size != channels:
        raise _Decline("bias is not one int32 per output channel", shape)
    return bias.reshape(-1)


def _meta(program, config, x_shape, out_shape, index) -> np.ndarray:
    x, y = program.regions["x"], program.regions["y"]
    offsets = [x.base * elem_bytes(config, x.memory), y.base * elem_bytes(config, y.memory)]
    values = [getattr(config, name) for name in CONFIG_FIELDS]
    return np.array([*values, *x_shape[1:], *out_shape[1:], *offsets, index], np.int64)
