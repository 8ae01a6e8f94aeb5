"""The int32 -> int8 requantization VTA applies with its ALU after a GEMM (reference section 7):
round half up at a power-of-two shift, clip to +-127, then ReLU if the layer has one."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .isa import AluOp


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
        ops = (
            [(AluOp.ADD, 1 << (self.shift - 1)), (AluOp.SHR, self.shift)] if self.shift > 0 else []
        )
        ops += [(AluOp.MIN, 127), (AluOp.MAX, -127)]
        return ops + ([(AluOp.MAX, 0)] if self.relu else [])
