"""tvmopt demo: compile the built-in CNN, check it against ONNX Runtime, time both."""

from __future__ import annotations

from .arguments import add_target, positive_int


def register(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="compile and run the built-in demo model")
    add_target(parser)
    parser.add_argument("--repeat", type=positive_int, default=50, help="timed runs (default 50)")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from ..demo import run_demo

    return 0 if run_demo(target=args.target, repeat=args.repeat) else 1
