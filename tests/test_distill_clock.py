"""time_limit on the process's CPU time (time_clock="cpu"): on a shared host the budget other
jobs cannot eat. A faked CPU clock that ticks a second per reading stops training at the limit;
the wall clock, in the same run, would not have."""

from __future__ import annotations

import itertools

import pytest

import tvmopt
from tvmopt.distillation import trainer
from tvmopt.errors import OptionError

from .distill_models import digit_samples, mlp_student, mlp_teacher

FAST = dict(threads=1, progress=False, steps=12, batch_size=8, lr=1e-3, eval_every=100)


def test_cpu_clock_stops_training_at_the_limit(monkeypatch):
    ticks = itertools.count()
    monkeypatch.setattr(trainer.time, "process_time", lambda: float(next(ticks)))
    result = tvmopt.distill(mlp_teacher(), mlp_student(), digit_samples(64), time_limit=4.5,
                            time_clock="cpu", **FAST)  # fmt: skip
    assert result.history[-1]["step"] < 12
    assert result.history[-1]["cpu_seconds"] >= 4.5


def test_wall_clock_is_the_default():
    result = tvmopt.distill(mlp_teacher(), mlp_student(), digit_samples(64), time_limit=3600,
                            **FAST)  # fmt: skip
    assert result.history[-1]["step"] == 12 and "cpu_seconds" in result.history[-1]


def test_unknown_clock_is_one_line():
    with pytest.raises(OptionError, match="time_clock must be 'wall' or 'cpu', got 'gpu'"):
        tvmopt.distill(mlp_teacher(), mlp_student(), digit_samples(8), time_clock="gpu", **FAST)
