"""Worker processes that start in about a second and live across tuning batches.

TVM's pool workers run `python -m tvm.exec.popen_worker`, whose `import tvm` also imports torch
when it is installed (tvm_ffi does): 10-25 s per worker. MetaSchedule's LocalBuilder then starts
a fresh pool for every batch, so with its default timeouts every build times out. Our workers
start through tvmopt's torch-free import and one pool serves the whole tuning run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

from tvm.support.popen_pool import PopenPoolExecutor, PopenWorker

WORKER_MODULE = "tvmopt.autotune.popen_worker"


class TorchFreeWorker(PopenWorker):
    """TVM's PopenWorker, started on our entry module: the same pipe protocol, no torch."""

    def _start(self):
        if self._proc is not None:
            return
        main_read, worker_write = os.pipe()
        worker_read, main_write = os.pipe()
        command = [sys.executable, "-m", WORKER_MODULE, str(worker_read), str(worker_write)]
        self._proc = subprocess.Popen(command, pass_fds=(worker_read, worker_write),
                                      stdout=self._stdout, stderr=self._stderr)  # fmt: skip
        os.close(worker_read)
        os.close(worker_write)
        self._reader = os.fdopen(main_read, "rb")
        self._writer = os.fdopen(main_write, "wb")


class WorkerPool(PopenPoolExecutor):
    """TVM's PopenPoolExecutor on TorchFreeWorkers, one per thread of its thread pool; a worker
    that times out is killed and restarted by PopenWorker itself."""

    def _worker_run(self, fn, args, kwargs):
        with self._lock:
            worker = self._worker_map.get(threading.get_ident())
            if worker is None:
                worker = TorchFreeWorker(self._initializer, self._initargs,
                                         self._maximum_process_uses, self._stdout,
                                         self._stderr)  # fmt: skip
                self._worker_map[threading.get_ident()] = worker
        worker.send(fn, args, kwargs, self._timeout)
        return worker.recv()
