"""The quantization options `compile` and `quantize-report` share."""

from __future__ import annotations

import argparse

from ..errors import OptionError
from ..passes.quantize.spec import FALLBACK_SQNR_DB, METHODS

CALIBRATED = ("int8", "vta")  # the schemes that calibrate activations (weight-only ones do not)


def add_calibration(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--calib", metavar="DATA",
                        help="calibration data: an .npz file (one sample, arrays named after "
                             "the inputs) or a directory of them")  # fmt: skip
    parser.add_argument("--calib-method", default="minmax", choices=list(METHODS),
                        help="how activation ranges are chosen (default minmax)")  # fmt: skip
    parser.add_argument("--skip", nargs="+", default=[], metavar="NODE",
                        help="ONNX nodes kept in float32")  # fmt: skip
    parser.add_argument("--max-accuracy-drop", type=_share, metavar="SHARE",
                        help="fall back the most sensitive layers to float32 until at most this "
                             "share (0-1) of calibration samples changes top-1 class")  # fmt: skip
    parser.add_argument("--symmetric-activations", action="store_true",
                        help="activation ranges symmetric about zero")  # fmt: skip
    parser.add_argument("--weight-bits", type=int, choices=(7, 8),
                        help="conv and matmul weight bits (default: 7 on x86 CPUs without VNNI, "
                             "whose fast int8 step needs them, else 8)")  # fmt: skip
    parser.add_argument("--no-smooth", action="store_true",
                        help="no SmoothQuant-style migration of matmul input channels")  # fmt: skip
    parser.add_argument("--no-per-token", action="store_true",
                        help="no per-token activation scales for matmuls")  # fmt: skip
    parser.add_argument("--fallback-sqnr", type=_decibels, default=FALLBACK_SQNR_DB,
                        metavar="DB", help="matmuls whose int8 error alone is under DB dB of "
                        f"signal-to-noise stay float32 (default {FALLBACK_SQNR_DB:g}; 'off': "
                        "none)")  # fmt: skip


def add_group_size(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--group-size", type=int, choices=(32, 64, 128),
                        help="weight-only quantization: rows of K per scale (default 32 for "
                             "int4-weights, 128 for int8-weights)")  # fmt: skip


def _share(text: str) -> float:
    try:
        share = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= share <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return share


def _decibels(text: str) -> float | None:
    if text == "off":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected decibels or 'off', got {text!r}") from None


def quantize_options(args) -> dict:
    """compile() keyword arguments for the parsed quantization options; a calibrated scheme
    without --calib is refused here, before TVM is imported (10-25 s)."""
    scheme = getattr(args, "quantize", None) or "int8"  # quantize-report: int8
    if scheme in CALIBRATED and args.calib is None:
        raise OptionError(f"int8 quantization ({scheme}) needs calibration data: give --calib "
                          "DATA (an .npz file of inputs, or a directory of them)")  # fmt: skip
    from ..passes.quantize.quantize_weights import SCHEMES
    from ..passes.quantize.spec import QuantizeConfig

    if getattr(args, "quantize", None) in SCHEMES:  # no calibration
        return {"quantize": args.quantize}
    config = QuantizeConfig(
        method=args.calib_method,
        symmetric_activations=args.symmetric_activations,
        skip=tuple(args.skip),
        max_accuracy_drop=args.max_accuracy_drop,
        weight_bits=args.weight_bits,
        smooth=not args.no_smooth,
        per_token=not args.no_per_token,
        fallback_sqnr_db=args.fallback_sqnr,
    )
    return {"quantize": scheme, "calib": args.calib, "quantize_config": config}
