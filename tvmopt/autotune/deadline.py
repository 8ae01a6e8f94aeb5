"""A tuning run's time budget, kept where candidates are drawn.

MetaSchedule's gradient task scheduler sends every kernel its first batch before it reads any
result back, so a measure callback only sees the budget once that whole round is measured: on
an H100, ResNet-50's 24 GPU kernels (32 candidates each) ran past a 150 s budget without a
single callback. Here each kernel's search draws no candidate once the budget is spent, and the
scheduler ends a kernel whose search has none left: the batch in flight still lands.
"""

from __future__ import annotations

import time

from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.search_strategy import PySearchStrategy


class Deadline:
    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()

    def spent(self) -> bool:
        return self.left() <= 0


@derived_object
class DeadlineSearch(PySearchStrategy):
    """`inner`'s search (evolutionary), with no candidates once `deadline` is spent."""

    def __init__(self, inner, deadline: Deadline):
        super().__init__()
        self.inner = inner
        self.deadline = deadline

    def _initialize_with_tune_context(self, context) -> None:
        self.inner._initialize_with_tune_context(context)  # noqa: SLF001 - MetaSchedule's hook

    def pre_tuning(self, max_trials, num_trials_per_iter, design_spaces, database=None,
                   cost_model=None) -> None:  # fmt: skip
        self.inner.pre_tuning(max_trials, num_trials_per_iter, design_spaces, database, cost_model)

    def post_tuning(self) -> None:
        self.inner.post_tuning()

    def generate_measure_candidates(self):
        if self.deadline.spent():
            return None  # the scheduler ends this kernel's search
        return self.inner.generate_measure_candidates()

    def notify_runner_results(self, measure_candidates, results) -> None:
        self.inner.notify_runner_results(measure_candidates, results)

    def clone(self):
        return DeadlineSearch(self.inner.clone(), self.deadline)
