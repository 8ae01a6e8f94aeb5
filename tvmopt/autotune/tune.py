"""`tvmopt tune`: MetaSchedule over the model's tunable kernels, into a tuning database.

Every kernel's untuned schedule is measured first and recorded, so the database's best for a
kernel is never the slower of the two; the evolutionary search (XGBoost cost model) then
mutates tile sizes from there. A run resumes from the database: trials already in it count
toward `trials`, and the search starts from its best records.

The backend (Backend's tuning part) says which kernels are worth tuning and the space searched.
On GPUs (backends/cuda/tuning.py) the untuned schedule is dlight's, kept as a time rather than a
record, and the search runs in MetaSchedule's CUDA space; candidates build on every core here
and run on the GPU here.
"""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field

from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.arg_info import ArgInfo
from tvm.s_tir.meta_schedule.builder import BuilderInput
from tvm.s_tir.meta_schedule.database import TuningRecord
from tvm.s_tir.meta_schedule.runner import RunnerInput

from ..errors import OptionError, TuneError, last_line
from .database import mean_seconds, open_database
from .deadline import Deadline, DeadlineSearch
from .intrinsics import load_families_on_demand
from .measure import MeasureOptions, PoolBuilder, PoolRunner
from .progress import ProgressBar
from .rpc import check_tracker
from .tasks import extract_tasks

UNLIMITED = 1_000_000  # trials, when only a time budget bounds the run


@dataclass(frozen=True)
class TuneOptions:
    trials: int | None = None  # in total for the model, earlier runs' trials included
    time_budget_s: float | None = None  # wall-clock for this run
    seed: int | None = None
    trials_per_batch: int = 8
    measure: MeasureOptions = field(default_factory=MeasureOptions)
    progress: bool = True

    def __post_init__(self):
        if self.trials is None and self.time_budget_s is None:
            raise OptionError("tuning needs a budget: trials or a time budget")
        if self.trials is not None and self.trials < 1:
            raise OptionError(f"trials must be at least 1, got {self.trials}")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise OptionError(f"the time budget must be positive, got {self.time_budget_s} s")


@dataclass(frozen=True)
class KernelResult:
    name: str
    weight: int
    trials: int
    untuned_s: float | None
    best_s: float | None


def tune(prepared, db_path, options: TuneOptions) -> list[KernelResult]:
    """Tune the kernels of `prepared` (api.prepare) into the database at `db_path`."""
    load_families_on_demand()
    backend = prepared.backend
    backend.check_tunable()  # first: a target we cannot tune, or a GPU missing, leaves no
    tasks = extract_tasks(prepared)  # database behind
    backend.prepare_measurement(options.measure)
    database = open_database(db_path, backend.target, create=True)
    for task in tasks:
        database.register(task.mod, task.name)
    if tasks:
        if options.measure.rpc:
            check_tracker(options.measure.rpc, options.measure.rpc_key)
        with _quiet_metaschedule(), _measurers(options.measure) as (builder, runner):
            _measure_untuned(tasks, database, builder, runner, backend)
            _search(tasks, database, builder, runner, backend, options)
    return results(tasks, database, backend)


def _measure_untuned(tasks, database, builder, runner, backend) -> None:
    """Measure the untuned schedule of every kernel the database has no trial of: a record
    where its trace replays (our CPU rules'); else its time alone, which the records must beat
    (dlight's on GPUs)."""
    fresh = [task for task in tasks if _untuned_missing(database, task, backend)]
    schedules = [backend.untuned_schedule(task.rule, task.mod) for task in fresh]
    built = builder.build([BuilderInput(sch.mod, backend.target) for sch in schedules])
    errors = []
    for task, sch, build in zip(fresh, schedules, built, strict=True):
        run_secs, error = _run_one(runner, build, backend, task)
        if error is not None:  # not a trial of the search: left for the next run to retry
            errors.append(f"{task.name}: {error}")
        elif backend.untuned_is_record:
            workload = database.commit_workload(task.mod)
            database.commit_tuning_record(TuningRecord(sch.trace, workload, run_secs,
                                                       backend.target, _args(task)))  # fmt: skip
        else:
            database.commit_untuned(task.mod, mean_seconds(run_secs))
    if fresh and len(errors) == len(fresh):
        raise TuneError(f"every measurement failed, e.g. {errors[0]}")


def _untuned_missing(database, task, backend) -> bool:
    if backend.untuned_is_record:
        return database.trials_of([task.mod]) == 0
    return database.untuned_of(task.mod) is None


def _run_one(runner, build, backend, task):
    """(run seconds, None) or (None, the error's last line)."""
    if build.error_msg is not None:
        return None, last_line(build.error_msg, "unknown error")
    inputs = RunnerInput(build.artifact_path, backend.measure_device, _args(task))
    result = runner.run([inputs])[0].result()
    if result.error_msg is not None:
        return None, last_line(result.error_msg, "unknown error")
    return list(result.run_secs), None


def _args(task):
    return ArgInfo.from_prim_func(task.mod["main"])


def _search(tasks, database, builder, runner, backend, options: TuneOptions) -> None:
    done = database.trials_of(task.mod for task in tasks)
    left = UNLIMITED if options.trials is None else options.trials - done
    callbacks = list(ms.measure_callback.MeasureCallback.create("default"))
    deadline = None if options.time_budget_s is None else Deadline(options.time_budget_s)
    best = [_best(database, task) for task in tasks]
    bar = ProgressBar(tasks, best, done, options.trials, deadline) if options.progress else None
    try:
        if left > 0:
            _tune_tasks(tasks, database, builder, runner, backend, options, left,
                        callbacks + ([bar] if bar else []), deadline)  # fmt: skip
    finally:
        if bar is not None:
            bar.close()


def _tune_tasks(tasks, database, builder, runner, backend, options, trials, callbacks, deadline):
    seeds = ms.utils.fork_seed(options.seed, n=len(tasks))
    per_batch = backend.trials_per_batch(options.trials_per_batch, options.measure.build_workers)
    contexts = [
        ms.TuneContext(
            mod=task.mod, target=backend.target, space_generator=backend.search_space(task.rule),
            search_strategy=_search_strategy(deadline),
            task_name=task.name, rand_state=seed, num_threads=options.measure.build_workers,
            logger=logging.getLogger("tvmopt.tune"),
        ).clone()
        for task, seed in zip(tasks, seeds, strict=True)
    ]  # fmt: skip
    ms.tune_tasks(
        tasks=contexts, task_weights=[float(task.weight) for task in tasks],
        work_dir=str(database.path), max_trials_global=trials,
        num_trials_per_iter=per_batch, builder=builder, runner=runner,
        database=database, cost_model=_cost_model(options.measure.build_workers),
        measure_callbacks=callbacks, task_scheduler="gradient",
    )  # fmt: skip


def _search_strategy(deadline: Deadline | None):
    search = ms.search_strategy.EvolutionarySearch(population_size=64, init_min_unmeasured=16)
    return search if deadline is None else DeadlineSearch(search, deadline)


def _cost_model(cores: int) -> ms.cost_model.CostModel:
    """XGBoost (a dependency); where it is missing (a bare GPU machine that runs tvmopt from a
    copy), a random model, said once: the search then explores around the measured best."""
    try:
        import xgboost  # noqa: F401
    except ImportError:
        print("tvmopt tune: xgboost is not installed: candidates are picked at random, "
              "not by the XGBoost cost model", file=sys.stderr)  # fmt: skip
        return ms.cost_model.RandomModel()
    return ms.cost_model.XGBModel(num_tuning_cores=cores)


def _untuned_record_s(task, records, backend) -> float | None:
    if not backend.untuned_is_record:  # kept apart (untuned_of), never a record
        return None
    untuned = str(backend.untuned_schedule(task.rule, task.mod).trace.as_json())
    return next((mean_seconds(r.run_secs) for r in records
                 if str(r.trace.as_json()) == untuned), None)  # fmt: skip


def _best(database, task) -> float | None:
    top = database.get_top_k(database.commit_workload(task.mod), 1)
    return mean_seconds(top[0].run_secs) if top else None


def results(tasks, database, backend) -> list[KernelResult]:
    report = []
    for task in tasks:
        records = database.records_of(task.mod)
        untuned_s = database.untuned_of(task.mod) or _untuned_record_s(task, records, backend)
        report.append(KernelResult(task.name, task.weight, len(records), untuned_s,
                                   _best(database, task)))  # fmt: skip
    return report


@contextmanager
def _measurers(options: MeasureOptions):
    builder, runner = PoolBuilder(options), PoolRunner(options)
    try:
        yield builder, runner
    finally:
        builder.shutdown()
        runner.shutdown()


@contextmanager
def _quiet_metaschedule():
    """MetaSchedule logs every batch at INFO; the progress bar says what matters."""
    loggers = [logging.getLogger(name) for name in ("tvm.s_tir.meta_schedule", "tvmopt.tune")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
