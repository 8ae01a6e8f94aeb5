"""DeepSparse (Neural Magic's sparse-aware CPU engine) as a contender, where it is installed.

DeepSparse pins onnx 1.14, so it cannot share tvmopt's environment; give the bench the Python
of an environment that has it, e.g.

    python3.11 -m venv ~/ds && ~/ds/bin/pip install deepsparse==1.8.0
    TVMOPT_DEEPSPARSE_PYTHON=~/ds/bin/python python bench/sparse.py

and DeepSparse runs in a worker process there (deepsparse_worker.py), timed inside that
process, in the same alternating rounds as the other contenders. Without it the bench says why
DeepSparse was skipped and goes on.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import onnx

WORKER = Path(__file__).with_name("deepsparse_worker.py")
PYTHON_VARIABLE = "TVMOPT_DEEPSPARSE_PYTHON"
ONNX_IR_OF_DEEPSPARSE = 8  # onnx 1.14 reads IR 9 at most; torch's exports say 8 to 10


def unavailable() -> str | None:
    """Why DeepSparse cannot run here, or None when it can."""
    python = os.environ.get(PYTHON_VARIABLE)
    if not python:
        return f"DeepSparse skipped: set {PYTHON_VARIABLE} to a Python that has deepsparse"
    probe = subprocess.run([python, "-c", "import deepsparse"], capture_output=True, text=True)
    if probe.returncode != 0:
        lines = (probe.stderr.strip() or "it could not start").splitlines()
        return f"DeepSparse skipped: `import deepsparse` failed in {python}: {lines[-1]}"
    return None


class DeepSparse:
    """One compiled DeepSparse engine in a worker process: `run(feeds)` and `time(feeds)`."""

    def __init__(self, model: onnx.ModelProto, batch: int, cores: int):
        self.folder = tempfile.TemporaryDirectory(prefix="tvmopt-deepsparse-")
        self.process = subprocess.Popen(
            [os.environ[PYTHON_VARIABLE], str(WORKER)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self._ask({"compile": self._saved(model), "batch": batch, "cores": cores})
        initializers = {tensor.name for tensor in model.graph.initializer}
        self.input_names = [v.name for v in model.graph.input if v.name not in initializers]
        self.sent_feeds = None  # held, so that `is` below never matches a recycled id

    def _saved(self, model: onnx.ModelProto) -> str:
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        copy.ir_version = min(copy.ir_version, ONNX_IR_OF_DEEPSPARSE)
        path = Path(self.folder.name) / "model.onnx"
        onnx.save(copy, path)
        return str(path)

    def _ask(self, request: dict) -> dict:
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = json.loads(self.process.stdout.readline() or '{"error": "the worker died"}')
        if "error" in answer:
            raise RuntimeError(f"DeepSparse: {answer['error']}")
        return answer

    def _send_feeds(self, feeds: dict) -> None:
        if self.sent_feeds is not feeds:
            path = Path(self.folder.name) / "feeds.npz"
            np.savez(path, **{name: feeds[name] for name in self.input_names})  # in order
            self._ask({"feeds": str(path)})
            self.sent_feeds = feeds

    def run(self, feeds: dict) -> list[np.ndarray]:
        """The outputs, in the model's order."""
        self._send_feeds(feeds)
        path = Path(self.folder.name) / "out.npz"
        self._ask({"run": str(path)})
        with np.load(path) as outputs:
            return [outputs[f"arr_{i}"] for i in range(len(outputs.files))]

    def time_ms(self, feeds: dict) -> float:
        """One run's time in ms, measured inside the worker (no pipe in it)."""
        self._send_feeds(feeds)
        return self._ask({"time": 1})["ms"][0]

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()
        self.folder.cleanup()

