"""Kernel launches before and after our passes (-O0 vs -O3) for the model tests in the onnx wheel.

    python bench/kernel_counts.py > bench/results/kernel_counts.md

-O0 lowers the imported graph as it is, one kernel per op; -O3 runs every graph pass. Each
model's -O3 output is checked against ONNX Runtime on the same input before it is counted.
"""

import glob
import os

import numpy as np
import onnx
import onnxruntime

import tvmopt
from tvmopt.backends import resolve
from tvmopt.frontend.onnx import import_model, prepare
from tvmopt.passes.stats import count
from tvmopt.reference import FP32_TOLERANCE, max_relative_error

LIGHT_DIR = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


def kernels(mod, opt_level: int, backend) -> int:
    return count(backend.pipeline(backend.graph_passes(opt_level), opt_level)(mod))[1]


def error_vs_onnxruntime(path: str, compiled) -> float:
    spec = compiled.inputs[0]
    feed = {
        spec.name: np.linspace(-1, 1, int(np.prod(spec.shape)), dtype=np.float32).reshape(
            spec.shape
        )
    }
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    expected = session.run(None, feed)[0]
    return max_relative_error(next(iter(compiled.run(feed).values())), expected)


def main() -> None:
    backend = resolve("llvm")
    print("| model | kernels -O0 | kernels -O3 | -O3 error vs ONNX Runtime |")
    print("|---|---|---|---|")
    for path in sorted(glob.glob(os.path.join(LIGHT_DIR, "light_*.onnx"))):
        name = os.path.basename(path)[len("light_") : -len(".onnx")]
        mod = import_model(prepare(onnx.load(path)))
        error = error_vs_onnxruntime(path, tvmopt.compile(path))
        verdict = "ok" if error <= FP32_TOLERANCE else "MISMATCH"
        row = [name, kernels(mod, 0, backend), kernels(mod, 3, backend), f"{error:.1e} ({verdict})"]
        print("| " + " | ".join(str(cell) for cell in row) + " |", flush=True)


if __name__ == "__main__":
    main()
