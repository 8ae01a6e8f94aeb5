"""TVM's thread pool gets one thread per physical core (tvmopt/threads.py), where TVM alone took
half the hardware threads on x86, so half the cores of a machine without hyper-threading; a
count the user set stands."""

from __future__ import annotations

import os
import subprocess
import sys

from tvmopt import threads

PROBE = "from tvmopt._tvm import tvm; print(tvm.get_global_func('runtime.NumThreads')())"


def _pool_size(**env) -> int:
    clean = {k: v for k, v in os.environ.items() if k not in ("TVM_NUM_THREADS", "OMP_NUM_THREADS")}
    run = subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env}, check=True,
                         capture_output=True, text=True)  # fmt: skip
    return int(run.stdout.strip().splitlines()[-1])


def test_the_pool_has_a_thread_per_physical_core():
    cores = threads.physical_cores()
    assert 1 <= cores <= (os.cpu_count() or 1)
    assert _pool_size() == cores


def test_a_thread_count_the_user_chose_stands():
    assert _pool_size(TVM_NUM_THREADS="1") == 1


def test_without_topology_each_cpu_counts_as_a_core(monkeypatch, tmp_path):
    monkeypatch.setattr(threads, "CPU_TOPOLOGY", tmp_path)  # no topology files
    assert threads.physical_cores() == len(os.sched_getaffinity(0))
