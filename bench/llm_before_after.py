"""The llm suite's encoders, symbolic `main` only (no buckets), compiled by two tvmopt trees and
timed in one process, interleaved, against a static library and ONNX Runtime.

Build with each tree on PYTHONPATH (a library is code plus metadata: any tree's runtime loads
it), then time them all in one process:

    PYTHONPATH=<old tree> python bench/llm_before_after.py build /tmp/before --layers 2 --seq 384
    PYTHONPATH=<new tree> python bench/llm_before_after.py build /tmp/after --layers 2 --seq 384
    python bench/llm_before_after.py time before=/tmp/before after=/tmp/after --seq 384
    (--avx2 on both builds: the x86-64-v3 target; the static library is the first directory's)
"""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path

AVX2 = {"kind": "llvm", "mcpu": "x86-64-v3"}


def encoder_model(name: str, layers: int):
    import onnx

    from tvmopt.benchmark.llm_suite import ENCODERS, export_dynamic

    base = ENCODERS[name]
    encoder = replace(base, name=f"{name}_{layers}", shape={**base.shape, "layers": layers})
    model = onnx.load(str(export_dynamic(encoder, Path("/tmp/llm_before_after"))))
    return encoder, model


def build(args) -> None:
    import tvmopt
    from tvmopt.benchmark.llm_suite import DIMS

    _, model = encoder_model(args.model, args.layers)
    target = AVX2 if args.avx2 else None
    out = Path(args.directory)
    out.mkdir(parents=True, exist_ok=True)
    tvmopt.compile(model, dims=DIMS, target=target).export(out / "dynamic.so", alone=True)
    for length in args.seq:
        shapes = {"input_ids": (1, length)}
        static = tvmopt.compile(model, input_shapes=shapes, target=target)
        static.export(out / f"static{length}.so", alone=True)


def time_all(args) -> None:
    os.environ.setdefault("TVM_NUM_THREADS", str(args.threads))  # before TVM's pool starts
    import numpy as np
    import onnxruntime as ort

    import tvmopt
    from tvmopt.benchmark.llm_suite import token_ids
    from tvmopt.timing import interleaved_medians

    encoder, model = encoder_model(args.model, args.layers)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])  # fmt: skip
    trees = dict(spec.split("=", 1) for spec in args.libraries)
    calls = {}
    for length in args.seq:
        feeds = token_ids(encoder, length)
        reference = session.run(None, feeds)[0]
        libraries = {label: Path(d) / "dynamic.so" for label, d in trees.items()}
        libraries["static"] = Path(next(iter(trees.values()))) / f"static{length}.so"
        for label, path in libraries.items():
            library = tvmopt.load(path)
            error = float(np.abs(library.run(feeds)["hidden"] - reference).max())
            print(f"{length} tokens, {label}: max abs error vs ONNX Runtime {error:.2e}")
            calls[length, label] = (lambda lib, f: lambda: lib.run(f))(library, feeds)
        calls[length, "onnxruntime"] = (lambda f: lambda: session.run(None, f))(feeds)
    medians = interleaved_medians(calls, args.rounds, calls=2)
    print("| tokens | library | median ms | vs static | vs ORT |\n|---|---|---|---|---|")
    for (length, label), seconds in medians.items():
        static, ort_time = medians[length, "static"], medians[length, "onnxruntime"]
        print(f"| {length} | {label} | {seconds * 1e3:.2f} | {seconds / static:.3f} | "
              f"{seconds / ort_time:.3f} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["build", "time"])
    parser.add_argument("paths", nargs="+", help="build: one directory; time: LABEL=DIRECTORY")
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--seq", type=int, nargs="+", default=[384])
    parser.add_argument("--avx2", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    if args.action == "build":
        args.directory = args.paths[0]
        build(args)
    else:
        args.libraries = args.paths
        time_all(args)


if __name__ == "__main__":
    main()
