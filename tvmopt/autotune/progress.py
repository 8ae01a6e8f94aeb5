"""What a tuning run shows: a measure callback MetaSchedule calls after every
batch of measured candidates (after they are in the database)."""

from __future__ import annotations

from tqdm import tqdm
from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.measure_callback import PyMeasureCallback

from .database import mean_seconds


@derived_object
class ProgressBar(PyMeasureCallback):
    """Trials done (counting earlier runs), the model's estimated time in its tuned kernels
    (sum over kernels of calls x best latency), and time left of a time budget."""

    def __init__(self, tasks, best: list, done: int, total: int | None, deadline=None):
        super().__init__()
        self.weights = [task.weight for task in tasks]
        self.best = best  # seconds per kernel, shared with the driver
        self.deadline = deadline
        self.bar = tqdm(total=total, initial=done, unit="trial", desc="tuning", leave=True)
        self._show()

    def apply(self, task_scheduler, task_id, candidates, builder_results, runner_results):
        for result in runner_results:
            seconds = mean_seconds(result.run_secs)
            if seconds is not None and (self.best[task_id] is None or seconds < self.best[task_id]):
                self.best[task_id] = seconds
        self.bar.update(len(runner_results))
        self._show()

    def _show(self) -> None:
        known = [w * b for w, b in zip(self.weights, self.best, strict=True) if b is not None]
        postfix = {"kernels": f"{sum(known) * 1e3:.2f} ms"} if known else {}
        if self.deadline is not None:
            postfix["left"] = f"{max(self.deadline.left(), 0) / 60:.1f} min"
        self.bar.set_postfix(postfix, refresh=True)

    def close(self) -> None:
        self.bar.close()
