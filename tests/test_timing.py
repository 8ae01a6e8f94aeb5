"""tvmopt/timing.py: timing calls one by one, and contenders taking turns."""

from __future__ import annotations

import time

import pytest

from tvmopt.timing import interleaved_medians, time_callable


def test_contenders_take_turns_and_each_gets_its_own_median():
    order = []
    runs = {"slow": lambda: (order.append("slow"), time.sleep(0.002)),
            "fast": lambda: order.append("fast")}  # fmt: skip
    medians = interleaved_medians(runs, rounds=3, calls=2)
    assert order == ["slow", "slow", "fast", "fast"] * 3
    assert medians["slow"] >= 0.002 > medians["fast"]


def test_time_callable_refuses_no_runs():
    with pytest.raises(ValueError, match="repeat must be at least 1"):
        time_callable(lambda: None, repeat=0)
    assert len(time_callable(lambda: None, repeat=4, warmup=0).samples_ms) == 4
