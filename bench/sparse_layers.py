"""The sparse kernels' micro-benchmark: BERT-base's matmul layers (128 tokens; 768 -> 768,
768 -> 3072, 3072 -> 768), their weights magnitude-pruned unstructured and in 1 x 8 blocks, on
each kernel (dense, BSR 1x8, BSR 1x16, CSR) against tvmopt's dense kernel, in one run.

    TVM_NUM_THREADS=1 python bench/sparse_layers.py [--target llvm] [--rounds 30]

Each layer is a one-MatMul ONNX model compiled by tvmopt once per kernel (the choice steered to
that kernel), checked against ONNX Runtime, then all are timed in alternating rounds (medians).
The ratios calibrate sparse_choice.COSTS. Writes bench/results/sparse/layers-<isa>.md. One
thread: on a shared 2-core host, two threads wait at every parallel loop's barrier for whichever
was descheduled (12 ms medians for 1 ms layers); the kernels' per-core ratios are what the cost
model needs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

import tvmopt
from tvmopt.backends import resolve
from tvmopt.backends.llvm import sparse_choice
from tvmopt.backends.llvm.cpu import cpu_of
from tvmopt.peak import cpu_model

RESULTS = Path(__file__).parent / "results" / "sparse"
SHAPES = [(768, 768), (768, 3072), (3072, 768)]
SPARSITIES = (0.5, 0.8, 0.9, 0.95)
KERNELS = {"bsr 1x8": ("bsr", 8), "bsr 1x16": ("bsr", 16), "csr": ("csr", 1)}


def prune(weight: np.ndarray, sparsity: float, width: int) -> np.ndarray:
    """`weight` [K, N] with the `sparsity` share of its 1 x `width` blocks (along N) of least
    L1 norm set to zero; width 1: unstructured magnitude pruning."""
    k, n = weight.shape
    blocks = weight.reshape(k, n // width, width)
    norms = np.abs(blocks).sum(axis=2)
    cut = np.quantile(norms, sparsity)
    return (blocks * (norms > cut)[..., None]).reshape(k, n).astype(weight.dtype)


def matmul_model(weight: np.ndarray, rows: int = 128):
    k, n = weight.shape
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="matmul")], "layer",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, rows, k))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, (1, rows, n))],
        [numpy_helper.from_array(weight, "w")],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def steered(candidates, kernel: str, width: int):
    """`candidates` (sparse_choice's), less every kernel but (`kernel`, `width`): --sparse
    force then compiles that one."""

    def only(weight, rows, lanes):
        every = candidates(weight, rows, lanes)
        return [c for c in every if (c.kernel, c.width) == (kernel, width)] or every

    return only


def compiled_kernels(model, target) -> dict:
    compiled = {"dense": tvmopt.compile(model, target=target, sparse="off")}
    original = sparse_choice._candidates
    try:
        for name, (kernel, width) in KERNELS.items():
            sparse_choice._candidates = steered(original, kernel, width)
            compiled[name] = tvmopt.compile(model, target=target, sparse="force")
    finally:
        sparse_choice._candidates = original
    return compiled


def interleaved_times(runs: dict, feeds: dict, rounds: int) -> dict:
    """Each compiled model's run times (ms), timed in alternating rounds."""
    times = {name: [] for name in runs}
    for compiled in runs.values():
        compiled.run(feeds)  # warm
    for _ in range(rounds):
        for name, compiled in runs.items():
            start = time.perf_counter()
            compiled.run(feeds)
            times[name].append((time.perf_counter() - start) * 1e3)
    return times


def checked(compiled: dict, model, feeds) -> None:
    import onnxruntime

    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])  # fmt: skip
    expected = session.run(None, feeds)[0]
    for name, runner in compiled.items():
        error = float(np.abs(runner.run(feeds)["y"] - expected).max())
        if error > 1e-4:
            sys.exit(f"{name} differs from ONNX Runtime by {error:.2g}")


def measure(target, rounds: int, sparsities=SPARSITIES, widths=(1, 8)):
    rng = np.random.default_rng(0)
    for k, n in SHAPES:
        dense = (rng.standard_normal((k, n)) / np.sqrt(k)).astype("float32")
        feeds = {"x": rng.standard_normal((1, 128, k)).astype("float32")}
        for width in widths:
            for sparsity in sparsities:
                model = matmul_model(prune(dense, sparsity, width))
                compiled = compiled_kernels(model, target)
                checked(compiled, model, feeds)
                yield (k, n, width, sparsity, interleaved_times(compiled, feeds, rounds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="llvm")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--sparsities", default=",".join(str(s) for s in SPARSITIES))
    parser.add_argument("--widths", default="1,8", help="pruning blocks: 1 (unstructured), 8")
    args = parser.parse_args()
    spec = json.loads(args.target) if args.target.startswith("{") else args.target
    target = resolve(spec).target

    cpu = cpu_of(target)
    lines = [f"# Sparse kernels on BERT-base's layers ({cpu.mcpu}, {cpu.isa.name})", "",
             f"`TVM_NUM_THREADS={os.environ.get('TVM_NUM_THREADS', '')} "
             f"python {' '.join(sys.argv)}`; "
             f"{platform.processor() or platform.machine()}, {cpu_model()}; 128 tokens; median "
             "ms of interleaved rounds (x: dense / kernel, of the medians; min: of the fastest "
             "runs, what the kernel costs when no other process preempts it).", "",
             "| layer | pruned | sparsity | dense ms | " +
             " | ".join(f"{name} ms (x)" for name in KERNELS) + " |",
             "|---|---|---|---|" + "---|" * len(KERNELS)]  # fmt: skip
    sparsities = [float(s) for s in args.sparsities.split(",")]
    widths = [int(w) for w in args.widths.split(",")]
    for k, n, width, sparsity, times in measure(target, args.rounds, sparsities, widths):
        medians = {name: statistics.median(values) for name, values in times.items()}
        fastest = {name: min(values) for name, values in times.items()}
        cells = [f"{medians[name]:.3f} ({medians['dense'] / medians[name]:.2f}; "
                 f"min {fastest['dense'] / fastest[name]:.2f})" for name in KERNELS]  # fmt: skip
        line = (f"| {k}x{n} | 1x{width} | {sparsity:.0%} | {medians['dense']:.3f} "
                f"(min {fastest['dense']:.3f}) | " + " | ".join(cells) + " |")  # fmt: skip
        print(line, flush=True)
        lines.append(line)
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = (
        ""
        if (sparsities, widths) == (list(SPARSITIES), [1, 8])
        else "-" + args.widths.replace(",", "-")
    )
    out = RESULTS / f"layers-{cpu.isa.name}{suffix}.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
