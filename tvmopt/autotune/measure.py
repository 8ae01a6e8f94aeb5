"""Building and measuring candidates: MetaSchedule's own worker functions, run in our long-lived
torch-free pools (workers.py), on this machine or on the servers of an RPC tracker."""

from __future__ import annotations

import concurrent.futures
import os
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.builder import BuilderResult, PyBuilder, local_builder
from tvm.s_tir.meta_schedule.runner import (
    EvaluatorConfig,
    PyRunner,
    RPCConfig,
    local_runner,
    rpc_runner,
)
from tvm.s_tir.meta_schedule.runner.rpc_runner import RPCRunnerFuture

from .workers import WorkerPool

# a build worker is recycled after this many builds: TVM's pool workers leak memory over time
BUILDS_PER_WORKER = 64


@dataclass(frozen=True)
class MeasureOptions:
    build_workers: int = field(default_factory=lambda: len(os.sched_getaffinity(0)))
    build_timeout_s: float = 60.0
    run_timeout_s: float = 60.0
    # each candidate: `repeat` means of `number` runs, at least `min_repeat_ms` each
    number: int = 3
    repeat: int = 3
    min_repeat_ms: int = 20
    rpc: str | None = None  # "host:port" of a tracker
    rpc_key: str = "tvmopt"
    rpc_workers: int = 1  # measurements in flight at once, one per free server

    def evaluator(self) -> EvaluatorConfig:
        return EvaluatorConfig(number=self.number, repeat=self.repeat,
                               min_repeat_ms=self.min_repeat_ms,
                               enable_cpu_cache_flush=False)  # fmt: skip

    def rpc_config(self) -> RPCConfig:
        host, _, port = self.rpc.rpartition(":")
        return RPCConfig(tracker_host=host, tracker_port=int(port), tracker_key=self.rpc_key,
                         session_timeout_sec=int(self.run_timeout_s))  # fmt: skip


def build_kernel(mod, target, _params):
    """MetaSchedule's default build, minus its import of every tensor intrinsic (20 s)."""
    from tvm.driver import build
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

    mod = RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod)
    with target:  # TVM's nvcc callback reads the GPU architecture from the current target
        return build(mod, target=target)


@derived_object
class PoolBuilder(PyBuilder):
    """MetaSchedule's LocalBuilder work, on workers that outlive the batch."""

    def __init__(self, options: MeasureOptions):
        super().__init__()
        self.timeout_s = options.build_timeout_s
        self.pool = WorkerPool(max_workers=options.build_workers, timeout=self.timeout_s,
                               maximum_process_uses=BUILDS_PER_WORKER)  # fmt: skip

    def build(self, build_inputs):
        futures = [
            self.pool.submit(
                local_builder._worker_func, build_kernel, None, inp.mod, inp.target, None
            )  # fmt: skip
            for inp in build_inputs
        ]
        return [self._result(future) for future in futures]

    def _result(self, future) -> BuilderResult:
        try:
            return BuilderResult(future.result(), None)
        except (TimeoutError, FutureTimeout):
            return BuilderResult(None, f"build timed out after {self.timeout_s:.0f} s")
        except Exception as err:  # noqa: BLE001 - whatever the worker raised, as the error text
            return BuilderResult(None, f"build failed: {err}")

    def shutdown(self) -> None:
        self.pool.shutdown()


@derived_object
class PoolRunner(PyRunner):
    """Measures built candidates one at a time here, or over RPC on the tracker's servers. A
    failed or vanished server costs only the candidates it held: they come back as errors."""

    def __init__(self, options: MeasureOptions):
        super().__init__()
        self.options = options
        self.evaluator = options.evaluator()
        self.rpc = options.rpc_config() if options.rpc else None
        workers = options.rpc_workers if self.rpc else 1  # local: one at a time, or they contend
        self.pool = WorkerPool(max_workers=workers, timeout=options.run_timeout_s)

    def run(self, runner_inputs):
        futures = []
        for inp in runner_inputs:
            future = RPCRunnerFuture(self._submit(inp), self.options.run_timeout_s)
            if self.rpc is None:
                # here, a measurement must finish before MetaSchedule builds the next batch:
                # compiling on the same cores would slow the kernel being timed (as LocalRunner)
                concurrent.futures.wait([future.future])
            futures.append(future)
        return futures

    def _submit(self, inp):
        args = (str(inp.artifact_path), str(inp.device_type),
                tuple(info.as_json() for info in inp.args_info))  # fmt: skip
        if self.rpc is None:
            return self.pool.submit(local_runner._worker_func, None, None, None, self.evaluator,
                                    1, *args)  # fmt: skip
        return self.pool.submit(rpc_runner._worker_func, None, None, None, None, None, self.rpc,
                                self.evaluator, 1, *args)  # fmt: skip

    def shutdown(self) -> None:
        self.pool.shutdown()
