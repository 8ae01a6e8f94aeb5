"""tvmopt quantize-report MODEL.onnx --calib DATA [--calib-method M]: how each layer fares in
int8 against float32 (SQNR, cosine, scale, range), and how often the top-1 class changes."""

from __future__ import annotations

import sys

from .arguments import add_input_shapes, add_target
from .quantize_args import add_calibration, quantize_options


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "quantize-report", help="compare each int8 layer with float32 on calibration data"
    )
    parser.add_argument("model", help="the ONNX model file")
    add_target(parser)
    add_input_shapes(parser)
    add_calibration(parser)
    parser.set_defaults(handler=run)


def run(args) -> int:
    from ..api import compile as compile_model

    compiled = compile_model(
        args.model, target=args.target, input_shapes=dict(args.input_shapes),
        log=lambda line: print(line, file=sys.stderr), **quantize_options(args),
    )  # fmt: skip
    print(compiled.quantize_report.table())
    return 0
