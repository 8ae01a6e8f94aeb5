"""The CPU schedule rules, tried in order on every TIR function that no tuning record covers:
the first rule that applies schedules the function."""

from __future__ import annotations

from tvm.s_tir.dlight import ApplyDefaultSchedule

from .rule_conv2d import Conv2dNCHW
from .rule_fallback import Fallback
from .rule_int8_gemm import Int8Gemm
from .rule_matmul import Matmul


def default_rules() -> list:
    return [
        Int8Gemm(),  # int8 layers: quantize, VNNI GEMM, dequantize
        Conv2dNCHW(),  # direct conv, register-blocked over output channels x columns
        Matmul(),  # (batch) matmul, register-blocked over rows x columns
        Fallback(),  # everything else: parallel + vectorized
    ]


def schedule_pass():
    return ApplyDefaultSchedule(*default_rules())
