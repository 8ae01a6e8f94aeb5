"""What a distillation run returns: the trained student and how close it came to the teacher."""

from __future__ import annotations

from dataclasses import dataclass, field

import onnx
from torch import nn


@dataclass
class DistillResult:
    """`model`: the trained student as ONNX (None for a torch student); `module`: it in torch;
    `before`/`after`: held-out agreement with the teacher; `history`: one row per evaluation."""

    model: onnx.ModelProto | None
    module: nn.Module
    before: dict
    after: dict
    history: list
    seconds: float
    measured: dict = field(default_factory=dict)  # measure.py's figures, with measure=True

    def describe(self) -> str:
        lines = [f"{'metric':<16}{'before':>10}{'after':>10}"]
        for name, after in self.after.items():
            before = self.before.get(name, float("nan"))
            lines.append(f"{name:<16}{before:>10.4f}{after:>10.4f}")
        steps = self.history[-1]["step"] if self.history else 0
        lines.append(f"{steps} steps in {self.seconds:.1f} s")
        if self.measured:
            from .measure import describe

            lines.append(describe(self.measured))
        return "\n".join(lines)
