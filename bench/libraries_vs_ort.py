"""Compiled libraries of one ONNX model (say, before and after a change, or one per ISA build)
against ONNX Runtime, in ONE interleaved run: each round times every contender in turn
(timing.interleaved_medians), so that the machine's load falls on all alike. Each library's
output is checked against ONNX Runtime's first.

    TVM_NUM_THREADS=1 python bench/libraries_vs_ort.py model.onnx \\
        before=before.so after=after.so --threads 1 --rounds 30

Prints a markdown table: each contender's median latency and its ratio to ONNX Runtime's.
"""

import argparse
from pathlib import Path

import numpy as np
import onnxruntime

import tvmopt
from tvmopt.inputs import random_inputs
from tvmopt.timing import interleaved_medians

TOLERANCE = 1e-4  # max error relative to the reference's largest magnitude, as the tests check


def ort_session(path: Path, threads: int):
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def library_runner(path: Path, feeds: dict, reference: list):
    """A callable running the library at `path`, after checking its outputs against `reference`."""
    compiled = tvmopt.load(path)
    outputs = list(compiled.run(feeds).values())
    for actual, expected in zip(outputs, reference, strict=True):
        error = np.abs(actual - expected).max() / max(np.abs(expected).max(), 1e-30)
        if error > TOLERANCE:
            raise SystemExit(f"{path}: error {error:.3g} against ONNX Runtime")
    return lambda: compiled.run(feeds)


def labelled(text: str) -> tuple[str, Path]:
    label, sep, path = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected LABEL=PATH, got {text!r}")
    return label, Path(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="the .onnx file the libraries were compiled from")
    parser.add_argument("libraries", nargs="+", type=labelled, help="LABEL=PATH of each .so")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime's intra-op threads")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--calls", type=int, default=3, help="calls per contender per round")
    args = parser.parse_args()
    session = ort_session(args.model, args.threads)
    first = tvmopt.load(args.libraries[0][1])
    feeds = random_inputs(first.inputs, seed=0)
    reference = session.run(None, feeds)
    runs = {label: library_runner(path, feeds, reference) for label, path in args.libraries}
    runs["onnxruntime"] = lambda: session.run(None, feeds)
    for run in runs.values():  # warm-up
        run()
    medians = interleaved_medians(runs, args.rounds, args.calls)
    ort = medians["onnxruntime"]
    print("| contender | median ms | vs ONNX Runtime |\n|---|--:|--:|")
    for label, seconds in medians.items():
        print(f"| {label} | {seconds * 1e3:.2f} | {seconds / ort:.2f} |")


if __name__ == "__main__":
    main()
