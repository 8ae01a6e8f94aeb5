"""The int32 -> int8 requantization VTA applies with its ALU after a GEMM (reference section 7):
round half up at a power-of-two shift, clip to +-127, then ReLU if the layer has one."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .isa import AluOp

ALU_IMMEDIATE_MAX = (1 << 15) - 1  # the ALU's immediate is 16-bit two's complement


@dataclass(frozen=True)
class Requantize:
    """int32 -> int8: round half up at `shift` bits, clip to +-127, then ReLU if asked."""

    shift: int
    relu: bool = False

    def reference(self, acc: np.ndarray) -> np.ndarray:
        acc = acc.astype(np.int64)
        if self.shift > 0:
            acc = (acc + (1 << (self.shift - 1))) >> self.shift
        out = np.clip(acc, -127, 127)
        return (np.maximum(out, 0) if self.relu else out).astype(np.int8)

    def alu_ops(self) -> list[tuple[AluOp, int]]:
        ops = self._rounding_shift() + [(AluOp.MIN, 127), (AluOp.MAX, -127)]
        return ops + ([(AluOp.MAX, 0)] if self.relu else [])

    def _rounding_shift(self) -> list[tuple[AluOp, int]]:
        """(acc + 2^(s-1)) >> s. Past s = 16 the half does not fit the ALU's 16-bit signed
        immediate (ResNet-50's layers reach s = 17), so the shift goes in two steps with the
        same result: with q = acc >> (s-1), floor((q + 1) / 2) equals it exactly."""
        if self.shift == 0:
            return []
        if 1 << (self.shift - 1) <= ALU_IMMEDIATE_MAX:
            return [(AluOp.ADD, 1 << (self.shift - 1)), (AluOp.SHR, self.shift)]
        return [(AluOp.SHR, self.shift - 1), (AluOp.ADD, 1), (AluOp.SHR, 1)]
