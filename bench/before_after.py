"""Libraries compiled by another checkout (before) against this checkout's builds (after) and
ONNX Runtime, per model and ISA, timed in one interleaved run (tvmopt/timing.py). Make the
'before' libraries from the other checkout first:

    PYTHONPATH=OTHER python bench/before_after.py --export DIR MODEL.onnx...
    TVM_NUM_THREADS=1 python bench/before_after.py --before DIR MODEL.onnx... [--rounds 15]

Prints a markdown table of tvmopt / ONNX Runtime latency (medians over rounds, 1 thread).
"""

import argparse
import os
from pathlib import Path

import numpy as np
import onnxruntime

import tvmopt
from tvmopt.inputs import random_inputs
from tvmopt.timing import interleaved_medians

COLUMNS = ("avx2 before", "avx2 after", "avx512 before", "avx512 after")
ISAS = {"avx2": {"kind": "llvm", "mcpu": "x86-64-v3"}, "avx512": None}


def build(path: Path, isa: str):
    target = ISAS[isa]
    return tvmopt.compile(str(path), target=target) if target else tvmopt.compile(str(path))


def export(directory: Path, models: list[Path]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for path in models:
        for isa in ISAS:
            build(path, isa).export(directory / f"{path.stem}-{isa}.so")


def contenders(path: Path, before: Path, feeds: dict) -> dict:
    """name -> callable; every tvmopt output checked against ONNX Runtime's first."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    reference = session.run(None, feeds)[0]
    runs = {"ort": lambda: session.run(None, feeds)}
    for isa in ISAS:
        for when, compiled in (("before", tvmopt.load(before / f"{path.stem}-{isa}.so")),
                               ("after", build(path, isa))):  # fmt: skip
            output = next(iter(compiled.run(feeds).values()))
            error = np.abs(output - reference).max() / np.abs(reference).max()
            assert error < 1e-4, f"{path.stem} {isa} {when}: error {error:.3g}"
            runs[f"{isa} {when}"] = lambda compiled=compiled: compiled.run(feeds)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--export", type=Path)
    parser.add_argument("--before", type=Path)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    if args.export:
        export(args.export, args.models)
        return
    print(f"TVM_NUM_THREADS={os.environ.get('TVM_NUM_THREADS')}, {args.rounds} rounds\n")
    print("| model | ORT ms | AVX2 before | AVX2 after | AVX-512 before | AVX-512 after |")
    print("|---|--:|--:|--:|--:|--:|")
    for path in args.models:
        model = tvmopt.load(args.before / f"{path.stem}-avx2.so")
        feeds = random_inputs(model.inputs, seed=0)
        seconds = interleaved_medians(contenders(path, args.before, feeds), args.rounds)
        ort = seconds.pop("ort")
        ratios = " | ".join(f"{seconds[name] / ort:.2f}" for name in COLUMNS)
        print(f"| {path.stem} | {ort * 1e3:.2f} | {ratios} |", flush=True)


if __name__ == "__main__":
    main()
