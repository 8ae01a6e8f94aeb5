"""How many cycles each instruction keeps its module busy.

Compute follows the reference's cost fit (apache/tvm side branch cc96cbbb, vta_cost.py): a GEMM
issues one micro-op iteration per cycle after a pipeline fill, an ALU op with an immediate one
per cycle and a tensor-tensor ALU op one per two. Data movement is bus-bound: a DMA pays a fixed
start-up, then moves `bus_bytes` per cycle (padding is generated on chip, one element a cycle).
The constants are fields, so a measured board can replace them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import DEFAULT, VTAConfig
from .isa import Alu, Finish, Gemm, Insn, Load, elem_bytes


@dataclass(frozen=True)
class CycleModel:
    config: VTAConfig = DEFAULT
    gemm_fill: int = 80
    alu_fill: int = 46
    dma_startup: int = 150
    nop: int = 40  # a LOAD/STORE of x_size 0, which only moves tokens

    def cycles(self, insn: Insn) -> int:
        if isinstance(insn, Gemm):
            return self._iterations(insn) + self.gemm_fill
        if isinstance(insn, Alu):
            per = 1 if insn.use_imm else 2
            return per * self._iterations(insn) + self.alu_fill
        if isinstance(insn, Load):  # Store too
            return self._dma(insn)
        if isinstance(insn, Finish):
            return 1
        raise TypeError(f"no cycle cost for {type(insn).__name__}")

    @staticmethod
    def _iterations(insn) -> int:
        return insn.iter_out * insn.iter_in * (insn.uop_end - insn.uop_bgn)

    def _dma(self, insn: Load) -> int:
        if insn.x_size == 0:
            return self.nop
        moved = insn.x_size * insn.y_size * elem_bytes(self.config, insn.memory)
        padded = (insn.x_pad_0 + insn.x_size + insn.x_pad_1) * (
            insn.y_pad_0 + insn.y_size + insn.y_pad_1
        ) - insn.x_size * insn.y_size
        bus = -(-moved // self.config.bus_bytes)
        return self.dma_startup + bus + padded

    def seconds(self, cycles: int) -> float:
        return cycles / (self.config.clock_mhz * 1e6)
