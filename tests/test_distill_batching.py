"""The distillation trainer's cheaper steps: length-sorted windows of batches (less padding,
still every sample once per epoch and the same batches for the same seed) and the frozen
teacher's held-out outputs computed once however often the student is evaluated."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from tvmopt.distillation.losses import LossConfig
from tvmopt.distillation.trainer import Pairs, TrainConfig, Trainer


class Mean(nn.Module):
    """{"out": mean of the token ids}, counting its calls."""

    output_names = ["out"]

    def __init__(self):
        super().__init__()
        self.scale, self.calls = nn.Parameter(torch.ones(())), 0

    def forward(self, ids):
        self.calls += 1
        return {"out": ids.float().mean(-1, keepdim=True) * self.scale}


def token_samples(count: int) -> list[dict]:
    lengths = np.random.default_rng(0).integers(2, 60, count)
    return [{"ids": np.full((1, n), 1 + i % 7, np.int64)} for i, n in enumerate(lengths)]


def trainer(samples: list[dict], window: int, seed: int = 0, held_out=()) -> Trainer:
    config = TrainConfig(batch_size=8, length_window=window, seed=seed)
    return Trainer(Mean(), Mean(), Pairs({}, {}), {}, LossConfig(output_loss="mse"), config,
                   samples, list(held_out), stack=True)  # fmt: skip


def padded_tokens(t: Trainer, steps: int) -> int:
    sizes = [[t.train_set[i]["ids"].size for i in t.batch_indices(s)] for s in range(steps)]
    return sum(max(batch) * len(batch) for batch in sizes)


def test_length_windows_visit_every_sample_once_and_pad_less():
    samples = token_samples(256)
    plain, grouped = trainer(samples, 1), trainer(samples, 8)
    epoch = [i for step in range(32) for i in grouped.batch_indices(step)]
    assert sorted(epoch) == list(range(256))
    assert padded_tokens(grouped, 32) < 0.75 * padded_tokens(plain, 32)


def test_length_windows_depend_on_the_seed_alone():
    samples = token_samples(96)
    first, again, other = (trainer(samples, 4, seed) for seed in (0, 0, 1))
    batches = [[t.batch_indices(s) for s in range(24)] for t in (first, again, other)]
    assert batches[0] == batches[1] and batches[0] != batches[2]


def test_teacher_runs_once_on_the_held_out_set():
    t = trainer(token_samples(16), 1, held_out=token_samples(6))
    first, second = t.evaluate(), t.evaluate()
    assert t.teacher.calls == 1 and t.student.calls == 2
    assert first == second
