"""One thread per physical core, as ONNX Runtime runs, unless the user chose.

TVM's thread pool takes hardware_concurrency / 2 threads on x86, assuming two hyper-threads per
core: on a machine with one thread per core (most cloud VMs' vCPUs, this 2-core one) it used
half the cores, and ResNet-50 took 64 ms where two threads take 33 (znver4, 2 cores; ONNX
Runtime, on both, 40). The count goes into TVM_NUM_THREADS, which TVM reads when its pool first
starts; a TVM_NUM_THREADS or OMP_NUM_THREADS the user set is kept. The C++ runner does the same
(deploy/cpp/include/tvmopt/threads.h).
"""

from __future__ import annotations

import os
from pathlib import Path

CPU_TOPOLOGY = Path("/sys/devices/system/cpu")


def physical_cores() -> int:
    """The physical cores this process may run on (its affinity), counted once per core."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
    return max(len({_core_of(cpu) for cpu in cpus}), 1)


def _core_of(cpu: int) -> tuple:
    topology = CPU_TOPOLOGY / f"cpu{cpu}" / "topology"
    try:
        return ((topology / "physical_package_id").read_text().strip(),
                (topology / "core_id").read_text().strip())  # fmt: skip
    except OSError:
        return ("cpu", str(cpu))  # no topology: each CPU a core of its own


def default_to_physical_cores() -> None:
    if "TVM_NUM_THREADS" not in os.environ and "OMP_NUM_THREADS" not in os.environ:
        os.environ["TVM_NUM_THREADS"] = str(physical_cores())
