"""tvmopt bench [MODEL...] --targets ... --peers ...: side-by-side latency, checked outputs."""

from __future__ import annotations

import argparse
import shlex
import sys

from .arguments import positive_int


def names_from(allowed: list[str]):
    def parse(text: str) -> list[str]:
        names = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in names if name not in allowed]
        if unknown or not names:
            wrong = repr(unknown[0]) if unknown else "empty list"
            raise argparse.ArgumentTypeError(f"unknown {wrong}; choose from {','.join(allowed)}")
        return names

    return parse


def register(subparsers) -> None:
    from ..benchmark.contenders import PEERS, TARGETS, default_threads
    from ..benchmark.llm_suite import LENGTHS
    from ..benchmark.models import SUITES

    parser = subparsers.add_parser("bench", help="compare targets and peers side by side")
    parser.add_argument(
        "models", nargs="*", help="suite model names or .onnx paths (default: the --suite's models)"
    )
    parser.add_argument(
        "--suite",
        choices=list(SUITES),
        default="default",
        help="the models benched when none is named: "
        + "; ".join(f"{name}: {' '.join(models)}" for name, models in SUITES.items()),
    )
    parser.add_argument(
        "--targets",
        type=names_from(TARGETS),
        default=TARGETS,
        help=f"comma-separated, from {','.join(TARGETS)} (default: all)",
    )
    parser.add_argument(
        "--peers",
        type=names_from(PEERS),
        default=PEERS,
        help=f"comma-separated, from {','.join(PEERS)} (default: all)",
    )
    parser.add_argument("--repeat", type=positive_int, default=10, help="timed rounds (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs each (default 2)")
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=default_threads(),
        help="threads for every contender (default: all available cores)",
    )
    parser.add_argument(
        "--seq",
        type=positive_int,
        nargs="+",
        default=list(LENGTHS),
        help="--suite llm: the sequence lengths (default: %(default)s)",
    )
    parser.add_argument("--output-dir", default="bench/results", help="(default bench/results)")
    parser.set_defaults(handler=run)  # fmt: skip


def chosen_models(args) -> list[str]:
    """The models named, else the suite's."""
    from ..benchmark.models import SUITES

    return args.models or SUITES[args.suite]


def run(args) -> int:
    from ..benchmark.runner import run_bench

    command = "tvmopt " + shlex.join(sys.argv[1:])
    if args.suite == "llm":
        return run_llm(args, command)
    contenders = args.targets + args.peers
    report = run_bench(chosen_models(args), contenders, args.threads, args.repeat, args.warmup,
                       args.output_dir, command)  # fmt: skip
    print(report.read_text())
    print(f"wrote {report.parent}/results.md, results.csv, latency.png, speedup.png, machine.json")
    return 0


def run_llm(args, command: str) -> int:
    """--suite llm: its own contenders (dynamic, static, onnxruntime), per sequence length;
    --targets and --peers do not apply."""
    from ..benchmark.llm_suite import run_llm_suite

    report = run_llm_suite(chosen_models(args), args.seq, args.threads, args.repeat,
                           args.output_dir, command)  # fmt: skip
    print(report.read_text())
    print(f"wrote {report.parent}/results.md, results.csv")
    return 0
