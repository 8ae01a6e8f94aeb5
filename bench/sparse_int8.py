"""BERT-base with every MatMul weight pruned (1 x 8 blocks along N, or unstructured), quantized
to int8: tvmopt's dense int8 kernels (--sparse off) against the sparse int8 kernel
(kernel_sparse_int8.py, --sparse auto, and force) and the float32 sparse kernels, in one
interleaved run.

    TVM_NUM_THREADS=1 python bench/sparse_int8.py [--layers 2] [--rounds 20] [--target llvm]

The encoder and its pruning are bench/sparse.py's (hidden 768, FFN 3072, 1 x 128 tokens, seeded);
int8 is calibrated on 4 seeded random token sequences. Each build's output is compared with ONNX
Runtime's float32 run of the pruned model (cosine), then all run in alternating rounds
(tvmopt.timing.interleaved_medians). Writes bench/results/sparse/bert-<L>layers-int8-<isa>.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np
import onnxruntime
from sparse import bert, pruned_model
from sparse_layers import RESULTS

import tvmopt
from tvmopt.backends import resolve
from tvmopt.backends.llvm.cpu import cpu_of
from tvmopt.peak import cpu_model
from tvmopt.timing import interleaved_medians

PATTERNS = {"1x8 blocks": 8, "unstructured": 1}


def calibration(feeds: dict, count: int = 4) -> list[dict]:
    shape = feeds["input"].shape
    return [{"input": np.random.default_rng(seed).integers(1, 30522, shape).astype(np.int64)}
            for seed in range(count)]  # fmt: skip


def builds(model, target, feeds: dict) -> dict:
    int8 = {"quantize": "int8", "calib": calibration(feeds)}
    return {
        "int8 dense": tvmopt.compile(model, target=target, sparse="off", **int8),
        "int8 sparse": tvmopt.compile(model, target=target, sparse="auto", **int8),
        "int8 forced": tvmopt.compile(model, target=target, sparse="force", **int8),
        "fp32 sparse": tvmopt.compile(model, target=target, sparse="auto"),
    }


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def kernels_chosen(compiled) -> str:
    chosen = [f"{layer['kernel']} {layer['block']}".replace(" -", "")
              for layer in compiled.metadata.extra.get("sparse", [])]  # fmt: skip
    return ", ".join(f"{kernel} x{chosen.count(kernel)}" for kernel in dict.fromkeys(chosen))


def row(pattern: str, sparsity: float, compiled: dict, feeds: dict, rounds: int) -> str:
    runs = {name: (lambda c=c: c.run(feeds)) for name, c in compiled.items()}
    times = {name: ms * 1e3 for name, ms in interleaved_medians(runs, rounds).items()}
    dense, sparse, fp32 = times["int8 dense"], times["int8 sparse"], times["fp32 sparse"]
    forced = times["int8 forced"]
    kernels = kernels_chosen(compiled["int8 sparse"])
    return (f"| {pattern} | {sparsity:.0%} | {dense:.2f} | {sparse:.2f} | {fp32:.2f} | "
            f"{dense / sparse:.2f} | {fp32 / sparse:.2f} | {kernels} | {forced:.2f} "
            f"({kernels_chosen(compiled['int8 forced'])}) |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=2, help="encoder layers (BERT-base: 12)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--target", default="llvm")
    parser.add_argument("--sparsity", type=float, default=0.9)
    parser.add_argument("--patterns", default=",".join(PATTERNS))
    args = parser.parse_args()
    spec = json.loads(args.target) if args.target.startswith("{") else args.target
    target = resolve(spec).target
    base, feeds = bert(args.layers)
    rows, checks = [], []
    for pattern in args.patterns.split(","):
        model = pruned_model(base, args.sparsity, PATTERNS[pattern])
        reference = onnxruntime.InferenceSession(model.SerializeToString()).run(None, feeds)[0]
        compiled = builds(model, target, feeds)
        outputs = {name: next(iter(c.run(feeds).values())) for name, c in compiled.items()}
        checks.append(f"{pattern}: " + ", ".join(f"{name} {cosine(out, reference):.7f}"
                                                 for name, out in outputs.items()))  # fmt: skip
        rows.append(row(pattern, args.sparsity, compiled, feeds, args.rounds))
        print(rows[-1], checks[-1], sep="\n", flush=True)
    _write(args, cpu_of(target), rows, checks)


def _write(args, cpu, rows: list, checks: list) -> None:
    command = " ".join(["python", "bench/sparse_int8.py", *sys.argv[1:]])
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    lines = [
        f"# BERT-base ({args.layers} of 12 encoder layers), pruned, int8: sparse against dense",
        "", f"`TVM_NUM_THREADS={os.environ.get('TVM_NUM_THREADS', '')} {command}`", "",
        f"Target {cpu.mcpu} ({cpu.isa.name}); {cpu_model()}, {os.cpu_count()} CPUs shared with "
        f"other jobs (`uptime` at the end: {uptime}); 1 x 128 tokens; median ms of "
        f"{args.rounds} interleaved rounds of 5 calls (tvmopt.timing.interleaved_medians).",
        "", "| pruning | sparsity | int8 dense ms | int8 sparse ms | fp32 sparse ms | "
        "int8 dense / sparse | fp32 sparse / int8 sparse | int8 kernels (auto) | "
        "int8 --sparse force ms (kernels) |",
        "|---|---|---|---|---|---|---|---|---|", *rows, "",
        "Output cosine against ONNX Runtime's float32 run of the same pruned model:", "",
        *[f"- {check}" for check in checks],
    ]  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"bert-{args.layers}layers-int8-{cpu.isa.name}.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
