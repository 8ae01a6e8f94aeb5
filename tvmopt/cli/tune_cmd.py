"""tvmopt tune MODEL.onnx --db DIR (--trials N | --time-budget 30m) [--target T] [--seed S]
[--target cuda [--arch SM] [--precision fp16]] [--rpc HOST:PORT --rpc-key KEY]
[--quantize int8 --calib DATA ...]"""

from __future__ import annotations

import sys
import time

from .arguments import (
    add_cuda_options,
    add_input_shapes,
    add_opt_level,
    add_target,
    add_winograd,
    duration,
    host_port,
    positive_int,
)
from .quantize_args import add_calibration, quantize_options


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "tune", help="tune a model's kernels with MetaSchedule into a tuning database"
    )
    parser.add_argument("model", help="the ONNX model file")
    parser.add_argument(
        "--db",
        required=True,
        metavar="DIR",
        help="the tuning database: created if missing, resumed if not",
    )
    parser.add_argument(
        "--trials",
        type=positive_int,
        metavar="N",
        help="trials in total for this model, earlier runs' included",
    )
    parser.add_argument(
        "--time-budget",
        type=duration,
        metavar="TIME",
        help="wall-clock for this run: 90s, 30m, 1.5h",
    )
    parser.add_argument("--seed", type=int, help="fix the search's random seed")
    parser.add_argument(
        "--rpc",
        type=host_port,
        metavar="HOST:PORT",
        help="measure on the servers of this RPC tracker",
    )
    parser.add_argument("--rpc-key", default="tvmopt", help="the servers' key (default tvmopt)")
    parser.add_argument(
        "--rpc-workers",
        type=positive_int,
        default=1,
        metavar="N",
        help="measurements in flight over RPC at once (default 1)",
    )
    add_target(parser)
    add_cuda_options(parser)
    add_input_shapes(parser)
    add_opt_level(parser)
    add_winograd(parser)
    parser.add_argument("--quantize", choices=["int8"], help="tune the int8 model's kernels")
    add_calibration(parser)
    parser.set_defaults(handler=run)


def run(args) -> int:
    from ..api import prepare
    from ..autotune.measure import MeasureOptions
    from ..autotune.tune import TuneOptions, tune
    from ..backends import BuildOptions, resolve, target_argument

    measure = MeasureOptions(rpc=args.rpc, rpc_key=args.rpc_key, rpc_workers=args.rpc_workers)
    options = TuneOptions(trials=args.trials, time_budget_s=args.time_budget, seed=args.seed,
                          measure=measure)  # fmt: skip
    start = time.perf_counter()
    build = BuildOptions(precision=args.precision, winograd=args.winograd)
    # checked here, before minutes of import or calibration
    backend = resolve(target_argument(args.target, args.arch), build)
    prepared = prepare(args.model, backend, dict(args.input_shapes), opt_level=args.opt_level,
                       log=lambda line: print(line, file=sys.stderr),
                       **(quantize_options(args) if args.quantize else {}))  # fmt: skip
    kernels = tune(prepared, args.db, options)
    print_results(kernels)
    print(f"tuned in {time.perf_counter() - start:.0f} s into {args.db}")
    return 0


def print_results(kernels) -> None:
    if not kernels:
        print("no tunable kernels (conv2d, matmul or int8 layers) in this model")
        return
    print(f"{'kernel':<52} {'calls':>5} {'trials':>6} {'untuned us':>10} {'tuned us':>9} "
          f"{'speedup':>7}")  # fmt: skip
    for k in kernels:
        speedup = k.untuned_s / k.best_s if k.untuned_s and k.best_s else None
        print(f"{k.name[:52]:<52} {k.weight:>5} {k.trials:>6} {_us(k.untuned_s):>10} "
              f"{_us(k.best_s):>9} {_ratio(speedup):>7}")  # fmt: skip
    untuned = sum(k.weight * k.untuned_s for k in kernels if k.untuned_s and k.best_s)
    tuned = sum(k.weight * k.best_s for k in kernels if k.untuned_s and k.best_s)
    if tuned:
        print(f"{'all tuned kernels, per inference':<52} {'':>5} {'':>6} {untuned * 1e6:>10.1f} "
              f"{tuned * 1e6:>9.1f} {_ratio(untuned / tuned):>7}")  # fmt: skip


def _us(seconds) -> str:
    return "-" if seconds is None else f"{seconds * 1e6:.1f}"


def _ratio(value) -> str:
    return "-" if value is None else f"{value:.2f}x"
