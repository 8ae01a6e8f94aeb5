"""Tuned vs untuned vs ONNX Runtime: tune suite models into one tuning database, then time
tvmopt untuned (`llvm`), tvmopt with the database (`llvm-tuned`) and ONNX Runtime side by side.

    python bench/tune.py resnet50 bert_base --time-budget 15m

Tuning resumes: run it again and each model's budget is spent on top of what the database has.
Writes bench/results/tuned/ (the usual bench report) and bench/results/tuned/tuning.md (per
kernel: trials, untuned and tuned latency).
"""

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

from tvmopt.api import prepare
from tvmopt.autotune.tune import TuneOptions, tune
from tvmopt.benchmark.contenders import default_threads
from tvmopt.benchmark.models import SUITE, export
from tvmopt.benchmark.runner import run_bench
from tvmopt.cli.arguments import duration

RESULTS = Path(__file__).parent / "results"
DB = RESULTS / "tuning-db"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", choices=list(SUITE))
    parser.add_argument("--time-budget", type=duration, default=900.0, help="per model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    out = RESULTS / "tuned"
    out.mkdir(parents=True, exist_ok=True)
    command = f"python bench/tune.py {shlex.join(sys.argv[1:])}"
    lines = [f"# Tuning: {' '.join(args.models)}", "", f"`{command}`", ""]
    for name in args.models:
        lines += tune_model(name, args.time_budget, args.seed)
    (out / "tuning.md").write_text("\n".join(lines) + "\n")
    os.environ["TVMOPT_TUNING_DB"] = str(DB)
    report = run_bench(args.models, ["llvm", "llvm-tuned", "onnxruntime"], default_threads(),
                       args.repeat, 2, out, command)  # fmt: skip
    print(report.read_text())


def tune_model(name: str, budget_s: float, seed: int) -> list[str]:
    path = export(SUITE[name], RESULTS / "cache")
    start = time.perf_counter()
    kernels = tune(prepare(path), DB, TuneOptions(time_budget_s=budget_s, seed=seed))
    seconds = time.perf_counter() - start
    untuned = sum(k.weight * k.untuned_s for k in kernels if k.untuned_s and k.best_s)
    tuned = sum(k.weight * k.best_s for k in kernels if k.untuned_s and k.best_s)
    lines = [f"## {name}", "",
             f"{len(kernels)} tunable kernels, {sum(k.trials for k in kernels)} trials in the "
             f"database, this run {seconds / 60:.1f} min (budget {budget_s / 60:.0f} min).", "",
             f"Sum over kernels of calls x latency: untuned {untuned * 1e3:.2f} ms, tuned "
             f"{tuned * 1e3:.2f} ms ({untuned / tuned:.2f}x).", "",
             "| kernel | calls | trials | untuned us | tuned us | speedup |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for k in kernels:
        if k.untuned_s and k.best_s:
            lines.append(f"| {k.name} | {k.weight} | {k.trials} | {k.untuned_s * 1e6:.1f} | "
                         f"{k.best_s * 1e6:.1f} | {k.untuned_s / k.best_s:.2f}x |")  # fmt: skip
    return lines + [""]


if __name__ == "__main__":
    main()
