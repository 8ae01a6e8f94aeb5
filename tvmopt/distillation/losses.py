"""Distillation losses: the student's outputs against the teacher's (soft-target KL with a
temperature, MSE or cosine), chosen hidden states (MSE, through a learned projection where the
widths differ) and attention maps (MSE of the head-averaged maps, so pruned heads still match)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import OptionError

OUTPUT_LOSSES = ("kl", "mse", "cosine")


@dataclass(frozen=True)
class LossConfig:
    """What the student learns from the teacher, and how much each term weighs.

    `hidden` and `attention` map student tensor names to teacher tensor names; "auto" matches
    the LayerNormalization outputs (hidden) or rank-4 Softmax outputs (attention) that both
    graphs name alike, as pruning leaves them."""

    output_loss: str = "kl"
    temperature: float = 2.0
    output_weight: float = 1.0
    hidden: Mapping[str, str] | str = "auto"
    hidden_weight: float = 1.0
    attention: Mapping[str, str] | str = "auto"
    attention_weight: float = 0.0

    def __post_init__(self):
        if self.output_loss not in OUTPUT_LOSSES:
            raise OptionError(f"output loss must be one of {', '.join(OUTPUT_LOSSES)}, "
                              f"got {self.output_loss!r}")  # fmt: skip
        if not self.temperature > 0:
            raise OptionError(f"temperature must be positive, got {self.temperature}")
        weights = (self.output_weight, self.hidden_weight, self.attention_weight)
        if any(w < 0 for w in weights) or not any(w > 0 for w in weights):
            raise OptionError(f"loss weights must be >= 0 and not all 0, got {weights}")


def kl_logits(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton's soft-target loss over the last axis, times T^2 so gradients keep their scale."""
    log_student = F.log_softmax(student / temperature, dim=-1).flatten(0, -2)
    log_teacher = F.log_softmax(teacher / temperature, dim=-1).flatten(0, -2)
    kl = F.kl_div(log_student, log_teacher, log_target=True, reduction="batchmean")
    return kl * temperature**2


def cosine_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """1 - cosine similarity of each sample's output, flattened: scale-free, for embeddings."""
    s, t = student.flatten(1) if student.dim() > 1 else student, teacher.reshape(student.shape)
    t = t.flatten(1) if t.dim() > 1 else t
    return 1 - F.cosine_similarity(s, t, dim=-1).mean()


def output_loss(config: LossConfig, student: torch.Tensor, teacher: torch.Tensor):
    if config.output_loss == "kl":
        return kl_logits(student, teacher, config.temperature)
    if config.output_loss == "cosine":
        return cosine_loss(student, teacher)
    return F.mse_loss(student, teacher)


def channel_axis(t: torch.Tensor) -> int:
    """Features are the last axis of (batch, [seq,] features), axis 1 of (N, C, H, W)."""
    return 1 if t.dim() >= 4 else -1


class Projections(nn.Module):
    """One learned linear map per hidden-state pair whose widths differ (student -> teacher),
    started as the identity on the student's features so that it begins as plain MSE."""

    def __init__(self, widths: Mapping[str, tuple[int, int]]):
        super().__init__()
        self.names = [name for name, (s, t) in widths.items() if s != t]
        self.maps = nn.ModuleList(_identity_linear(*widths[name]) for name in self.names)

    def forward(self, name: str, x: torch.Tensor) -> torch.Tensor:
        if name not in self.names:
            return x
        axis = channel_axis(x)
        projected = self.maps[self.names.index(name)](x.movedim(axis, -1))
        return projected.movedim(-1, axis)


def _identity_linear(inputs: int, outputs: int) -> nn.Linear:
    linear = nn.Linear(inputs, outputs, bias=False)
    with torch.no_grad():
        linear.weight.zero_()
        size = min(inputs, outputs)
        linear.weight[:size, :size] = torch.eye(size)
    return linear


def hidden_loss(pairs: Mapping[str, str], projections: Projections, student: dict, teacher: dict):
    terms = [F.mse_loss(projections(s, student[s]), teacher[t]) for s, t in pairs.items()]
    return torch.stack(terms).mean()


def attention_loss(pairs: Mapping[str, str], student: dict, teacher: dict):
    """MSE of the maps averaged over heads (axis 1), scaled by the key length so that a
    uniform row's probabilities (1/keys) do not vanish."""
    terms = []
    for s, t in pairs.items():
        keys = student[s].shape[-1]
        terms.append(F.mse_loss(student[s].mean(1), teacher[t].mean(1)) * keys)
    return torch.stack(terms).mean()


def layerwise_loss(pairs: Mapping[str, str], student: dict, teacher: dict) -> torch.Tensor:
    """Per-token MSE of each block's output against the teacher's, relative to the teacher's
    mean square so that every block weighs alike whatever its scale."""
    terms = [F.mse_loss(student[s], teacher[t]) / teacher[t].pow(2).mean().clamp_min(1e-12)
             for s, t in pairs.items()]  # fmt: skip
    return torch.stack(terms).mean()
