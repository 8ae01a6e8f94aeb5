"""The CPU schedule rules, tried in order on every TIR function that no tuning record covers:
the first rule that applies schedules the function."""

from __future__ import annotations

from tvm import tirx
from tvm.s_tir.dlight import ApplyDefaultSchedule

from ..._tvm import tvm
from .rule_conv2d import Conv2dNCHW, deinterleave_strided_input
from .rule_conv_nhwc import Conv2dNHWC
from .rule_depthwise import DepthwiseConv2dNCHW
from .rule_depthwise_nhwc import DepthwiseNHWC
from .rule_fallback import Fallback
from .rule_group_conv_nhwc import GroupConv2dNHWC
from .rule_int8_depthwise import Int8Depthwise
from .rule_int8_gemm import Int8Gemm
from .rule_matmul import Matmul
from .rule_pool import Pool2dNHWC
from .rule_reduce_outer import ReduceOuterAxes
from .rule_row_reduce import RowReduction
from .rule_weight_only import WeightOnlyMatmul
from .rule_winograd import Conv2dWinograd


def default_rules() -> list:
    return [
        Int8Gemm(),  # int8 layers: quantize, VNNI GEMM, dequantize
        WeightOnlyMatmul(),  # int4/int8 weights in blocks, dequantized in the FMA loop
        Int8Depthwise(),  # int8 depthwise layers: taps vectorized over 16 channels
        Conv2dNHWC(),  # float convs channels last: the same panel GEMM in float32
        GroupConv2dNHWC(),  # grouped convs channels last: the GEMM, each panel over its group
        Conv2dWinograd(),  # float 3x3 convs channels last: transforms around the panel GEMM
        DepthwiseNHWC(),  # float depthwise convs channels last: taps vectorized over 16 channels
        DepthwiseConv2dNCHW(),  # one channel per group: per-thread channel planes, vector rows
        Conv2dNCHW(),  # direct conv, register-blocked over output channels x columns
        Matmul(),  # (batch) matmul, register-blocked over rows x columns
        Pool2dNHWC(),  # channels-last pools: window steps vectorized over channels
        ReduceOuterAxes(),  # channels-last global pools: sums vectorized over channels
        RowReduction(),  # softmax, LayerNorm: one pass per row, reductions vectorized
        Fallback(),  # everything else: parallel + vectorized
    ]


def schedule_pass():
    return ApplyDefaultSchedule(*default_rules())


@tvm.transform.module_pass(opt_level=0, name="tvmopt.DeinterleaveStridedInputs")
def deinterleave_pass(mod, ctx):
    """Lay out strided convs' padded inputs for contiguous loads, before scheduling or tuning."""
    for gvar, func in list(mod.functions.items()):
        scheduled = func.attrs is not None and "tirx.is_scheduled" in func.attrs
        if isinstance(func, tirx.PrimFunc) and not scheduled:
            updated = deinterleave_strided_input(func)
            if updated is not func:
                mod[gvar] = updated
    return mod
