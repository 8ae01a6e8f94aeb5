"""BERT-base with every MatMul weight magnitude-pruned (unstructured, and in 1 x 8 blocks along
the output columns) to 50/80/90/95%: tvmopt with sparse kernels (--sparse auto) against tvmopt
dense (--sparse off) and ONNX Runtime, on the same weights, in one process.

    TVM_NUM_THREADS=1 python bench/sparse.py [--layers 2] [--rounds 20] [--target llvm]

The encoder is tvmopt.benchmark's (hidden 768, 12 heads, FFN 3072, 1 x 128 tokens, seeded),
with `--layers` encoder layers (BERT-base has 12; the default 2 keeps the 16 compiles within
minutes on a shared 2-core host: each layer's four MatMuls are the same shapes). Both tvmopt
builds are first checked against ONNX Runtime's output; then the three run in alternating
rounds and the medians are reported. Writes bench/results/sparse/bert-<L>layers-<isa>.md
(results.md sums them up).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import onnx
import onnxruntime
from onnx import numpy_helper
from sparse_layers import RESULTS, prune

import tvmopt
from tvmopt.backends import resolve
from tvmopt.backends.llvm.cpu import cpu_of
from tvmopt.benchmark.deepsparse_peer import DeepSparse, unavailable
from tvmopt.benchmark.models import to_onnx_bytes
from tvmopt.peak import cpu_model
from tvmopt.reference import max_relative_error

SPARSITIES = (0.5, 0.8, 0.9, 0.95)
PATTERNS = {"unstructured": 1, "1x8 blocks": 8}
TOLERANCE = 1e-3  # relative, over 2+ encoder layers of float32 sums in another order


def bert(layers: int) -> tuple[onnx.ModelProto, dict]:
    import torch

    from tvmopt.benchmark.nets.bert import BertEncoder

    torch.manual_seed(0)
    ids = torch.randint(1, 30522, (1, 128))
    ids[:, 112:] = 0  # a padded tail, as the suite's BERT
    model = onnx.load_from_string(to_onnx_bytes(BertEncoder(layers=layers).eval(), (ids,)))
    return model, {"input": ids.numpy()}


def pruned_model(model: onnx.ModelProto, sparsity: float, width: int) -> onnx.ModelProto:
    """A copy of `model` with every 2-D MatMul weight (initializer [K, N]) pruned."""
    pruned = onnx.ModelProto()
    pruned.CopyFrom(model)
    weights = {node.input[1] for node in pruned.graph.node if node.op_type == "MatMul"}
    for tensor in pruned.graph.initializer:
        if tensor.name in weights and len(tensor.dims) == 2:
            weight = prune(numpy_helper.to_array(tensor), sparsity, width)
            tensor.CopyFrom(numpy_helper.from_array(weight, tensor.name))
    return pruned


def contenders(model, target, threads: int) -> dict:
    """name -> a callable on the feeds: ONNX Runtime, tvmopt dense, tvmopt sparse."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])  # fmt: skip
    dense = tvmopt.compile(model, target=target, sparse="off")
    sparse = tvmopt.compile(model, target=target, sparse="auto")
    runs = {
        "onnxruntime": lambda feeds: session.run(None, feeds)[0],
        "tvmopt dense": lambda feeds: next(iter(dense.run(feeds).values())),
        "tvmopt sparse": lambda feeds: next(iter(sparse.run(feeds).values())),
    }
    if unavailable() is None:
        runs["deepsparse"] = DeepSparse(model, batch=1, cores=threads)
    return runs, sparse


def checked(runs: dict, feeds: dict) -> dict:
    """Each tvmopt build's largest relative error against ONNX Runtime; exits past TOLERANCE."""
    expected = runs["onnxruntime"](feeds)
    errors = {name: max_relative_error(_output(run, feeds), expected)
              for name, run in runs.items() if name != "onnxruntime"}  # fmt: skip
    for name, error in errors.items():
        if error > TOLERANCE:
            sys.exit(f"{name} differs from ONNX Runtime by {error:.3g} (> {TOLERANCE})")
    return errors


def _output(run, feeds: dict):
    return run.run(feeds)[0] if isinstance(run, DeepSparse) else run(feeds)


def _time_ms(run, feeds: dict) -> float:
    """One run's ms; DeepSparse's is measured in its worker process, without the pipe."""
    if isinstance(run, DeepSparse):
        return run.time_ms(feeds)
    start = time.perf_counter()
    run(feeds)
    return (time.perf_counter() - start) * 1e3


def medians(runs: dict, feeds: dict, rounds: int) -> dict:
    times = {name: [] for name in runs}
    for run in runs.values():
        _time_ms(run, feeds)  # warm
    for _ in range(rounds):
        for name, run in runs.items():
            times[name].append(_time_ms(run, feeds))
    return {name: statistics.median(values) for name, values in times.items()}


def kernels_chosen(compiled) -> str:
    layers = compiled.metadata.extra.get("sparse", [])
    chosen = [layer["kernel"] + ("" if layer["kernel"] == "dense" else " " + layer["block"])
              for layer in layers]  # fmt: skip
    counts = {kernel: chosen.count(kernel) for kernel in dict.fromkeys(chosen)}
    return ", ".join(f"{kernel} x{count}" for kernel, count in counts.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=2, help="encoder layers (BERT-base: 12)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--target", default="llvm")
    parser.add_argument("--sparsities", default=",".join(str(s) for s in SPARSITIES))
    args = parser.parse_args()
    spec = json.loads(args.target) if args.target.startswith("{") else args.target
    target = resolve(spec).target
    cpu, threads = cpu_of(target), int(os.environ.get("TVM_NUM_THREADS", "0") or 0) or 2
    base, feeds = bert(args.layers)
    rows = []
    for pattern, width in PATTERNS.items():
        for sparsity in (float(s) for s in args.sparsities.split(",")):
            model = pruned_model(base, sparsity, width)
            runs, sparse = contenders(model, target, threads)
            errors = checked(runs, feeds)
            times = medians(runs, feeds, args.rounds)
            if "deepsparse" in runs:
                runs["deepsparse"].close()
            row = _row(pattern, sparsity, times, errors, kernels_chosen(sparse))
            print(row, flush=True)
            rows.append(row)
    _write(args, cpu, threads, rows)


def _row(pattern, sparsity, times, errors, kernels) -> str:
    ort, dense, sparse = (times[name] for name in ("onnxruntime", "tvmopt dense", "tvmopt sparse"))
    deepsparse = times.get("deepsparse")
    peer = f"{deepsparse:.1f} | {deepsparse / sparse:.2f}" if deepsparse else "- | -"
    error = max(errors.values())
    return (f"| {pattern} | {sparsity:.0%} | {ort:.1f} | {dense:.1f} | {sparse:.1f} | "
            f"{dense / sparse:.2f} | {ort / sparse:.2f} | {peer} | {error:.1e} | "
            f"{kernels} |")  # fmt: skip


def _write(args, cpu, threads: int, rows: list) -> None:
    command = " ".join(["python", "bench/sparse.py", *sys.argv[1:]])
    lines = [
        f"# BERT-base ({args.layers} of 12 encoder layers), pruned MatMul weights", "",
        f"`TVM_NUM_THREADS={os.environ.get('TVM_NUM_THREADS', '')} {command}`", "",
        f"Target {cpu.mcpu} ({cpu.isa.name}); {cpu_model()}, {os.cpu_count()} CPUs shared "
        f"with other jobs; {threads} thread(s) for tvmopt and ONNX Runtime "
        f"{onnxruntime.__version__}; 1 x 128 tokens; median ms of {args.rounds} interleaved "
        "rounds. Every contender matched ONNX Runtime's output first (largest relative "
        f"error). {_deepsparse_line()}", "",
        "| pruning | sparsity | ONNX Runtime ms | tvmopt dense ms | tvmopt sparse ms | "
        "dense / sparse | ORT / sparse | DeepSparse ms | DeepSparse / sparse | error | "
        "kernels (auto) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
    ]  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"bert-{args.layers}layers-{cpu.isa.name}.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


def _deepsparse_line() -> str:
    reason = unavailable()
    if reason:
        return reason + "."
    python = os.environ["TVMOPT_DEEPSPARSE_PYTHON"]
    version = subprocess.run([python, "-c", "import deepsparse; print(deepsparse.__version__)"],
                             capture_output=True, text=True).stdout.strip()  # fmt: skip
    return f"DeepSparse {version} in its own process (benchmark/deepsparse_peer.py), same weights."


if __name__ == "__main__":
    main()
