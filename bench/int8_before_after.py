"""int8 builds of two versions of tvmopt (this tree and another checkout: main, before a
change) against float32, timed in ONE process in alternating rounds: each version compiles its
own libraries (`compile`, run with that version on PYTHONPATH), and `time` loads them all.

    PYTHONPATH=/path/to/main python bench/int8_before_after.py compile before DIR
    PYTHONPATH=.             python bench/int8_before_after.py compile after DIR --fp32
    TVM_NUM_THREADS=1 PYTHONPATH=. python bench/int8_before_after.py time DIR [--rounds 15]

`time` prints each build's minimum and median over the rounds: on a loaded host the minimum
is the figure that filters the other processes out.

Models: ResNet-50 and BERT-base of the bench suite (their example inputs, calibrated on the
suite's calibration samples as `tvmopt bench` does); targets: llvm-int8-avx2 (x86-64-v3) and
llvm-int8 (the host's), float32 on x86-64-v3. `compile` records each int8 library's output
cosine to ONNX Runtime's float32 (graph optimizations off) beside it.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

MODELS = ("resnet50", "bert_base")
# label -> (target, quantized)
BUILDS = {"int8-avx2": ("x86-64-v3", True), "int8-vnni": (None, True),
          "fp32-avx2": ("x86-64-v3", False)}  # fmt: skip


def _case(name: str):
    from tvmopt.benchmark.models import SUITE
    from tvmopt.benchmark.runner import case_from_suite

    return case_from_suite(SUITE[name], Path("/tmp/tvmopt-bench-cache"))


def _reference(case):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(str(case.onnx_path), options)
    return session.run(None, case.feeds)


def _cosine(a, b) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def compile_all(version: str, out: Path, builds: list[str]) -> None:
    import tvmopt

    out.mkdir(parents=True, exist_ok=True)
    for name in MODELS:
        case = _case(name)
        reference = _reference(case)
        for label in builds:
            target, quantized = BUILDS[label]
            options = {"quantize": "int8", "calib": case.calibration} if quantized else {}
            compiled = tvmopt.compile(case.onnx_path, target=target, **options)
            path = out / f"{name}.{label}.{version}.so"
            compiled.export(path)
            outputs = list(compiled.run(case.feeds).values())
            cosine = min(_cosine(a, e) for a, e in zip(outputs, reference, strict=True))
            path.with_suffix(".json").write_text(json.dumps({"cosine": cosine}))
            print(f"{path.name}: cosine to float32 {cosine:.6f}", flush=True)


def time_all(out: Path, rounds: int, models=MODELS) -> None:
    import tvmopt

    for name in models:
        case = _case(name)
        libraries = sorted(out.glob(f"{name}.*.so"))
        models = {p.name.removesuffix(".so"): tvmopt.load(p) for p in libraries}
        runs = {label: (lambda m=m, f=case.feeds: m.run(f)) for label, m in models.items()}
        for run in runs.values():
            run()
        times = {label: [] for label in runs}
        for _ in range(rounds):  # each round runs every build once, in turn
            for label, run in runs.items():
                start = time.perf_counter()
                run()
                times[label].append(time.perf_counter() - start)
        fp32_times = next(v for label, v in times.items() if "fp32-avx2" in label)
        fp32, fp32_median = min(fp32_times), float(np.median(fp32_times))
        print(f"\n{name}: ms over {rounds} alternating rounds (the minimum filters the load)")
        print("| build | min ms | / fp32-avx2 | median ms | / fp32-avx2 | cosine to fp32 |")
        print("|---|--:|--:|--:|--:|--:|")
        for label, values in times.items():
            record = out / f"{label}.json"
            cosine = json.loads(record.read_text())["cosine"] if record.exists() else None
            cosine = f"{cosine:.6f}" if cosine is not None else ""
            best, median = min(values), float(np.median(values))
            print(f"| {label} | {best * 1e3:.1f} | {best / fp32:.3f} | {median * 1e3:.1f} | "
                  f"{median / fp32_median:.3f} | {cosine} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["compile", "time"])
    parser.add_argument("args", nargs="+", help="compile: VERSION DIR; time: DIR")
    parser.add_argument("--fp32", action="store_true", help="compile the float32 build too")
    parser.add_argument("--builds", default="int8-avx2,int8-vnni")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    if args.mode == "compile":
        builds = args.builds.split(",") + (["fp32-avx2"] if args.fp32 else [])
        compile_all(args.args[0], Path(args.args[1]), builds)
    else:
        time_all(Path(args.args[0]), args.rounds, args.models.split(","))


if __name__ == "__main__":
    main()
