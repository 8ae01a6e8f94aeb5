"""Compiled libraries of one ONNX model (say the AVX2 and AVX-512 builds, before and after a
change) against ONNX Runtime, in one interleaved run, as a markdown table.

    python bench/libraries_before_after.py mlp.onnx before-avx2.so after-avx2.so \\
        --threads 1 --rounds 200 --calls 5 --cpu-time

Each library's output is checked against ONNX Runtime's first. Wall time is
tvmopt.timing.interleaved_medians (alternating rounds, so drifts in the machine's load fall on
all alike). With --cpu-time (one thread only), the same rounds also count the process's CPU
time: on a host shared with other jobs a one-thread run's CPU time leaves out the time it
waited for a core, which its wall time does not.
"""

import argparse
import os
import statistics
import time
from pathlib import Path


def sessions(model: Path, libraries: list[Path], threads: int):
    """(runs by name, feeds, max relative error of each library against ONNX Runtime)."""
    import numpy as np
    import onnxruntime

    import tvmopt
    from tvmopt.inputs import random_inputs

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    ort = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    compiled = {path.stem: tvmopt.load(path) for path in libraries}
    feeds = random_inputs(next(iter(compiled.values())).inputs, seed=0)
    expected = ort.run(None, feeds)[0]
    errors = {}
    for name, library in compiled.items():
        actual = next(iter(library.run(feeds).values()))
        errors[name] = float(np.abs(actual - expected).max() / np.abs(expected).max())
    runs = {"onnxruntime": lambda: ort.run(None, feeds)}
    runs.update({name: (lambda m=m: m.run(feeds)) for name, m in compiled.items()})
    return runs, errors


def markdown(wall: dict, cpu: dict | None, errors: dict) -> str:
    head = "| contender | wall ms | / ORT |" + (" CPU ms | / ORT |" if cpu else "") + " error |"
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, seconds in wall.items():
        row = f"| {name} | {seconds * 1e3:.3f} | {seconds / wall['onnxruntime']:.2f} |"
        if cpu:
            row += f" {cpu[name] * 1e3:.3f} | {cpu[name] / cpu['onnxruntime']:.2f} |"
        rows.append(row + f" {errors.get(name, 0):.1e} |")
    return "\n".join(rows)


def timed(runs: dict, rounds: int, calls: int, cpu_time: bool):
    """Wall medians (tvmopt.timing), and CPU-time medians of the same rounds when asked."""
    from tvmopt.timing import interleaved_medians

    if not cpu_time:
        return interleaved_medians(runs, rounds, calls), None
    spent = {name: [] for name in runs}

    def counted(name, run):
        def call():
            start = time.process_time()
            run()
            spent[name].append(time.process_time() - start)

        return call

    wall = interleaved_medians({n: counted(n, r) for n, r in runs.items()}, rounds, calls)
    return wall, {name: statistics.median(values) for name, values in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("libraries", nargs="+", type=Path)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--cpu-time", action="store_true")
    args = parser.parse_args()
    if args.cpu_time and args.threads != 1:
        parser.error("--cpu-time measures one-thread runs only")
    os.environ["TVM_NUM_THREADS"] = str(args.threads)  # read when TVM's thread pool starts
    runs, errors = sessions(args.model, args.libraries, args.threads)
    load = os.getloadavg()[0]
    wall, cpu = timed(runs, args.rounds, args.calls, args.cpu_time)
    print(f"{args.model.stem}, {args.threads} thread(s), {args.rounds} rounds of {args.calls} "
          f"calls, load average {load:.1f} -> {os.getloadavg()[0]:.1f}\n")  # fmt: skip
    print(markdown(wall, cpu, errors))


if __name__ == "__main__":
    main()
