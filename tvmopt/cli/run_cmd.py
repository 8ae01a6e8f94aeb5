"""tvmopt run OUT.so [--inputs in.npz] [--output out.npz] [--repeat N] [--profile]
[--trace trace.json]"""

from __future__ import annotations

import numpy as np

from .arguments import positive_int


def register(subparsers) -> None:
    parser = subparsers.add_parser("run", help="run a compiled library and time it")
    parser.add_argument("library", help="a library written by `tvmopt compile`")
    parser.add_argument("--inputs", help=".npz with one array per input name (default: random)")
    parser.add_argument("--output", help="write the outputs to this .npz")
    parser.add_argument("--repeat", type=positive_int, default=10, help="timed runs (default 10)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="time every kernel: its share, GFLOP/s and the rule that scheduled it",
    )
    parser.add_argument(
        "--trace", metavar="FILE.json", help="with --profile: the last run as a Chrome trace"
    )
    parser.set_defaults(handler=run)


def run(args) -> int:
    from ..api import load
    from ..artifact import atomic_output, check_writable
    from ..inputs import random_inputs, read_npz

    for output in (args.output, args.trace):
        if output:
            check_writable(output)  # before the model runs
    model = load(args.library)
    inputs = read_npz(args.inputs) if args.inputs else random_inputs(model.inputs)
    outputs = model.run(inputs)
    for name, array in outputs.items():
        print(f"output {name}: {array.dtype}{list(array.shape)}, mean {array.mean():.6g}")
    if args.output:
        with atomic_output(args.output) as tmp, open(tmp, "wb") as stream:
            np.savez(stream, **outputs)
        print(f"wrote {args.output}")
    print(f"latency: {model.benchmark(inputs, repeat=args.repeat)}")
    if args.profile or args.trace:
        print_profile(model, inputs, args)
    return 0


def print_profile(model, inputs, args) -> None:
    from ..profile import write_trace

    profile = model.profile(inputs, repeat=args.repeat)
    print(f"\nprofile ({model.metadata.target.get('mcpu', model.metadata.backend)}):")
    print(profile.table())
    if args.trace:
        write_trace(profile, args.trace)
        print(f"wrote {args.trace}")
