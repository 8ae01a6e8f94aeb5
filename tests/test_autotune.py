"""Tuning with MetaSchedule (tiny budgets, fixed seeds): tune, compile with the database, resume
after a kill, merge, target awareness, broken databases, the search space itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper
from tvm import s_tir

import tvmopt
from tests.helpers import assert_matches_ort, make_model, ort_outputs
from tvmopt.api import prepare
from tvmopt.autotune import tune as tune_module
from tvmopt.autotune.database import HEADER, RECORDS, WORKLOADS, open_database
from tvmopt.autotune.files import merge, summarize
from tvmopt.autotune.measure import MeasureOptions
from tvmopt.autotune.tasks import extract_tasks
from tvmopt.autotune.tune import TuneOptions, tune
from tvmopt.errors import OptionError, TuneError, TuningDatabaseError
from tvmopt.inputs import random_inputs

OTHER_CPU = {"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": "skylake-avx512"}


def quick(trials: int, **kwargs) -> TuneOptions:
    return TuneOptions(trials=trials, seed=0, progress=False, **kwargs)


@pytest.fixture(scope="module")
def tuned_db(tmp_path_factory, demo_model):
    path = tmp_path_factory.mktemp("tuning") / "db"
    kernels = tune(prepare(demo_model), path, quick(12))
    return path, kernels


def record_lines(path: Path) -> list[str]:
    return (path / RECORDS).read_text().splitlines()


def test_tune_measures_every_kernel_and_never_loses_to_untuned(tuned_db):
    _, kernels = tuned_db
    assert [k.name for k in kernels]  # two convs and the classifier's matmul
    assert len(kernels) == 3
    for kernel in kernels:
        assert kernel.trials >= 1
        assert kernel.untuned_s is not None and kernel.best_s is not None
        assert kernel.best_s <= kernel.untuned_s


def test_compile_with_database_applies_records_and_matches_ort(tuned_db, demo_model):
    path, _ = tuned_db
    compiled = tvmopt.compile(demo_model, db=path)
    assert compiled.tuned_kernels == 3
    assert_matches_ort(demo_model, compiled)


def test_records_for_another_cpu_are_ignored(tuned_db, demo_model):
    path, _ = tuned_db
    assert len(open_database(path, OTHER_CPU)) == 0
    compiled = tvmopt.compile(demo_model, target=OTHER_CPU, db=path)
    assert compiled.tuned_kernels == 0


def test_search_space_replays_every_tile_decision(demo_model):
    """Each sampled split may take any divisor, unit factors included: the trace must replay
    with each one (unit loops once vanished and broke replay)."""
    prepared = prepare(demo_model)
    tasks = extract_tasks(prepared)
    assert len(tasks) >= 3  # the demo's convs and its classifier
    replayed = 0
    for task in tasks:
        trace = prepared.backend.untuned_schedule(task.rule, task.mod).trace
        tiles = [i for i in trace.insts if i.kind.name == "SamplePerfectTile"]
        assert tiles, f"{task.name}: its rule ({task.rule.__name__}) samples no tile"
        for inst in tiles:
            extent = int(np.prod([int(f) for f in trace.decisions[inst]]))
            for inner in (1, extent):
                changed = trace.with_decision(inst, [extent // inner, inner], True)
                sch = s_tir.Schedule(task.mod)
                changed.apply_to_schedule(sch, remove_postproc=True)
                assert not sch.mod.same_as(task.mod)  # the schedule was applied
                replayed += 1
    assert replayed >= 2 * len(tasks)


@pytest.mark.tuning  # 40-120 s of tuning on 2 cores: `pytest -m tuning` runs it
def test_resume_counts_earlier_trials(tmp_path, demo_model):
    path = tmp_path / "db"
    prepared = prepare(demo_model)
    tune(prepared, path, quick(6))
    first = len(record_lines(path))
    assert first >= 6
    tune(prepared, path, quick(first))  # budget already spent: nothing to do
    assert len(record_lines(path)) == first
    tune(prepared, path, quick(first + 4))
    assert len(record_lines(path)) >= first + 4


# when `tvmopt tune` is killed: as it creates the database, after a few records, and as it
# writes a new workload, both files' last lines torn (all three tune for 50-150 s on 2 cores:
# `pytest -m tuning`; the default suite keeps test_cli_tune_show_compile's tuning run)
KILL_POINTS = ["created", "records", "workload"]


@pytest.mark.tuning
@pytest.mark.parametrize("when", KILL_POINTS)
def test_killed_tuning_run_resumes(tmp_path, demo_path, demo_model, when):
    """SIGKILL at any moment leaves a database that opens, and the next run resumes it."""
    path = tmp_path / "db"
    command = [sys.executable, "-m", "tvmopt", "tune", demo_path, "--db", str(path),
               "--trials", "500", "--seed", "0"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    files = lambda *names: all((path / name).exists() for name in names)  # noqa: E731
    ready = {"created": lambda: files(HEADER),
             "records": lambda: files(RECORDS) and len(record_lines(path)) >= 6,
             "workload": lambda: files(WORKLOADS, RECORDS)}  # fmt: skip
    try:
        wait_for(ready[when], 120)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    torn = [RECORDS] + ([WORKLOADS] if when == "workload" else [])
    for name in torn if (path / RECORDS).exists() else []:
        with open(path / name, "a") as stream:  # a write torn by the kill
            stream.write('{"workload": "12')
    done = len(record_lines(path)) - 1 if (path / RECORDS).exists() else 0
    kernels = tune(prepare(demo_model), path, quick(done + 4))
    assert len(record_lines(path)) >= done + 4  # the torn lines were cut, the rest kept
    assert sum(k.trials for k in kernels) == len(record_lines(path))
    assert_matches_ort(demo_model, tvmopt.compile(demo_model, db=path))


def wait_for(condition, seconds: float) -> None:
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.2)


def matmul_model():
    weight = np.random.default_rng(0).standard_normal((64, 48)).astype(np.float32)
    return make_model([helper.make_node("MatMul", ["x", "w"], ["y"])],
                      [("x", TensorProto.FLOAT, (8, 64))], [("y", TensorProto.FLOAT, (8, 48))],
                      {"w": weight})  # fmt: skip


@pytest.mark.tuning  # tunes a second model: 27-81 s on 2 cores
def test_merge_unions_databases(tmp_path, tuned_db, demo_model):
    path, _ = tuned_db
    other, other_model = tmp_path / "other", matmul_model()
    tune(prepare(other_model), other, quick(4))
    merged = tmp_path / "merged"
    workloads, records = merge([path, other, path], merged)
    assert records == len(record_lines(path)) + len(record_lines(other))
    names = {row.name for row in summarize(merged)}
    assert names == {row.name for row in summarize(path)} | {row.name for row in summarize(other)}
    assert tvmopt.compile(demo_model, db=merged).tuned_kernels == 3
    compiled_other = tvmopt.compile(other_model, db=merged)
    assert compiled_other.tuned_kernels == 1
    assert_matches_ort(other_model, compiled_other)
    with pytest.raises(TuningDatabaseError, match="already exists"):
        merge([path], merged)


def test_an_untuned_time_kept_apart_outranks_slower_records(tmp_path, tuned_db, demo_model):
    """GPU tuning keeps dlight's time apart from the records (its traces cannot be written as
    records): records slower than it are never applied, and merging carries it along."""
    path, kernels = tuned_db
    copy = tmp_path / "copy"
    merge([path], copy)
    prepared = prepare(demo_model)
    tasks = extract_tasks(prepared)
    database = open_database(copy, prepared.target, create=True)
    database.commit_untuned(tasks[0].mod, 1e-12)  # faster than anything measured
    del database
    assert tvmopt.compile(demo_model, db=copy).tuned_kernels == len(kernels) - 1
    merged = tmp_path / "merged"
    merge([copy], merged)
    reopened = open_database(merged, prepared.target)
    assert reopened.untuned_of(tasks[0].mod) == 1e-12
    assert reopened.get_top_k(reopened.commit_workload(tasks[0].mod), 1) == []


@pytest.mark.tuning  # 40-120 s of tuning on 2 cores: `pytest -m tuning` runs it
def test_time_budget_stops_the_run(tmp_path, demo_model):
    start = time.monotonic()
    kernels = tune(prepare(demo_model), tmp_path / "db",
                   TuneOptions(time_budget_s=4, seed=0, progress=False))  # fmt: skip
    assert time.monotonic() - start < 60
    assert all(k.best_s is not None for k in kernels)


@pytest.mark.tuning  # 40-120 s of tuning on 2 cores: `pytest -m tuning` runs it
def test_spent_budget_draws_no_candidates(tmp_path, demo_model):
    kernels = tune(prepare(demo_model), tmp_path / "db",
                   TuneOptions(time_budget_s=1e-3, seed=0, progress=False))  # fmt: skip
    assert [k.trials for k in kernels] == [1] * len(kernels)  # the untuned record alone
    assert all(k.best_s == k.untuned_s for k in kernels)


class SpentAfterFirstDraw(tune_module.Deadline):
    """Spent once one kernel has drawn its first batch: mid-way through the scheduler's first
    round, which sends every kernel a batch before it reads any result back."""

    def __init__(self, seconds: float):
        super().__init__(seconds)
        self.draws = 0

    def spent(self) -> bool:
        self.draws += 1
        return self.draws > 1


@pytest.mark.tuning  # 40-120 s of tuning on 2 cores: `pytest -m tuning` runs it
def test_budget_spent_mid_first_round_ends_the_other_kernels(tmp_path, demo_model, monkeypatch):
    monkeypatch.setattr(tune_module, "Deadline", SpentAfterFirstDraw)
    kernels = tune(prepare(demo_model), tmp_path / "db",
                   TuneOptions(time_budget_s=600, seed=0, progress=False))  # fmt: skip
    searched = [k.name for k in kernels if k.trials > 1]
    assert len(searched) == 1, [(k.name, k.trials) for k in kernels]


@pytest.mark.tuning  # 40-120 s of tuning on 2 cores: `pytest -m tuning` runs it
def test_int8_kernels_tune_and_stay_bit_exact(tmp_path, demo_model):
    calib = [random_inputs(tvmopt.compile(demo_model).inputs, seed=s) for s in range(4)]
    int8 = {"quantize": "int8", "calib": calib}
    prepared = prepare(demo_model, **int8)
    assert any(task.rule.__name__ == "Int8Gemm" for task in extract_tasks(prepared))
    tune(prepared, tmp_path / "db", quick(10))
    tuned = tvmopt.compile(demo_model, db=tmp_path / "db", **int8)
    assert tuned.tuned_kernels >= 1
    feeds = calib[0]
    untuned_out = tvmopt.compile(demo_model, **int8).run(feeds)
    tuned_out = tuned.run(feeds)
    for name, reference in ort_outputs(demo_model, feeds).items():
        assert np.array_equal(tuned_out[name], untuned_out[name])  # integer math, any tiling
        cosine = np.dot(tuned_out[name].ravel(), reference.ravel()) / (
            np.linalg.norm(tuned_out[name]) * np.linalg.norm(reference)
        )
        assert cosine > 0.99


# broken and foreign databases


def test_missing_database(tmp_path, demo_model):
    with pytest.raises(TuningDatabaseError, match="not found"):
        tvmopt.compile(demo_model, db=tmp_path / "nope")


def test_foreign_directory(tmp_path, demo_model):
    (tmp_path / "database_workload.json").write_text("[]\n")  # MetaSchedule's own JSON layout
    with pytest.raises(TuningDatabaseError, match="not a tvmopt tuning database"):
        tvmopt.compile(demo_model, db=tmp_path)


def test_corrupt_line(tmp_path, tuned_db, demo_model):
    path, _ = tuned_db
    broken = tmp_path / "broken"
    merge([path], broken)
    lines = record_lines(broken)
    lines[1] = lines[1][: len(lines[1]) // 2]
    (broken / RECORDS).write_text("\n".join(lines) + "\n")
    with pytest.raises(TuningDatabaseError, match=r"records.jsonl, line 2"):
        tvmopt.compile(demo_model, db=broken)


def test_second_writer_is_refused(tmp_path, demo_model):
    first = open_database(tmp_path / "db", "llvm", create=True)
    with pytest.raises(TuningDatabaseError, match="in use by another tuning run"):
        open_database(tmp_path / "db", "llvm", create=True)
    del first


def test_tune_needs_a_budget():
    with pytest.raises(OptionError, match="needs a budget"):
        TuneOptions()


def test_unreachable_tracker_is_one_line(tmp_path, demo_model):
    options = quick(4, measure=MeasureOptions(rpc="127.0.0.1:1"))
    with pytest.raises(TuneError, match="cannot reach the RPC tracker at 127.0.0.1:1"):
        tune(prepare(demo_model), tmp_path / "db", options)


# the command line


def cli(*args, check_rc=0):
    result = subprocess.run([sys.executable, "-m", "tvmopt", *map(str, args)],
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    assert result.returncode == check_rc, result.stderr
    return result


def test_cli_tune_show_compile(tmp_path, demo_path, demo_model):
    db = tmp_path / "db"
    out = cli("tune", demo_path, "--db", db, "--trials", 8, "--seed", 1).stdout
    assert "all tuned kernels, per inference" in out
    shown = cli("db", "show", db).stdout
    assert "mcpu=" in shown and "conv2d" in shown
    library = tmp_path / "demo.so"
    assert "tuned kernels from" in cli("compile", demo_path, "--db", db, "-o", library).stdout
    assert_matches_ort(demo_model, tvmopt.load(library))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--db", "{tmp}/db"], "needs a budget"),
        (["--db", "{tmp}/db", "--time-budget", "soon"], "expected a duration"),
        (["--db", "{tmp}/db", "--trials", "4", "--rpc", "nohost"], "expected HOST:PORT"),
    ],
)
def test_cli_tune_errors(tmp_path, demo_path, args, message):
    result = cli("tune", demo_path, *[a.format(tmp=tmp_path) for a in args], check_rc=2)
    assert message in result.stderr.strip().splitlines()[-1]  # after argparse's usage lines


def test_cli_broken_database_exit_2(tmp_path, demo_path):
    (tmp_path / "db").mkdir()
    result = cli("compile", demo_path, "--db", tmp_path / "db", "-o", tmp_path / "x.so",
                 check_rc=2)  # fmt: skip
    assert "not a tvmopt tuning database" in result.stderr
    assert not (tmp_path / "x.so").exists()
    assert len(result.stderr.strip().splitlines()) == 1
    assert os.listdir(tmp_path) == ["db"]  # no library, not even a partial one


# measuring over RPC


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def rpc_cluster():
    """A tracker and two servers on loopback, as `tvmopt rpc` processes; yields (address,
    servers)."""
    processes = []

    def start(*args) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-m", "tvmopt", "rpc", *args],
                                   stdout=subprocess.PIPE, text=True)  # fmt: skip
        processes.append(process)
        assert "listening on" in process.stdout.readline()
        return process

    address = f"127.0.0.1:{free_port()}"
    start("tracker", "--host", "127.0.0.1", "--port", address.split(":")[1])
    servers = [start("server", "--tracker", address, "--key", "test", "--host", "127.0.0.1",
                     "--port", str(free_port())) for _ in range(2)]  # fmt: skip
    yield address, servers
    for process in processes:
        process.kill()
        process.wait()


@pytest.mark.tuning  # 40-120 s of tuning on 2 cores: `pytest -m tuning` runs it
def test_rpc_tuning_survives_a_dying_server(tmp_path, demo_path, demo_model, rpc_cluster):
    address, servers = rpc_cluster
    db = tmp_path / "db"
    command = [
        sys.executable,
        "-m",
        "tvmopt",
        "tune",
        demo_path,
        "--db",
        str(db),
        "--trials",
        "40",
        "--seed",
        "0",
        "--rpc",
        address,
        "--rpc-key",
        "test",
        "--rpc-workers",
        "2",
    ]
    tuning = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (db / RECORDS).exists() and len(record_lines(db)) >= 8, 180)
    servers[0].kill()  # mid-run: its session, if any, fails; the other server carries on
    stdout, stderr = tuning.communicate(timeout=300)
    assert tuning.returncode == 0, stderr
    assert "all tuned kernels, per inference" in stdout
    assert len(record_lines(db)) > 8  # trials kept landing after the kill
    assert_matches_ort(demo_model, tvmopt.compile(demo_model, db=db))


def test_rpc_key_without_servers_is_one_line(tmp_path, demo_model, rpc_cluster):
    address, _ = rpc_cluster
    options = quick(4, measure=MeasureOptions(rpc=address, rpc_key="nobody"))
    with pytest.raises(TuneError, match="has no server with key 'nobody'"):
        tune(prepare(demo_model), tmp_path / "db", options)
