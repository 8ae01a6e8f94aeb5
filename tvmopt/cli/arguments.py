"""Argument types shared by several commands; each raises ArgumentTypeError with what it expects."""

from __future__ import annotations

import argparse


def input_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """NAME=D0,D1,... as in `--input-shape x=1,3,224,224`."""
    name, sep, dims = text.rpartition("=")
    try:
        shape = tuple(int(d) for d in dims.split(","))
    except ValueError:
        shape = ()
    if not sep or not name or not shape or min(shape) < 0:
        raise argparse.ArgumentTypeError(
            f"expected NAME=D0,D1,... such as x=1,3,224,224, got {text!r}"
        )
    return name, shape


def dim_range(text: str):
    """NAME=LO..HI as in `--dim sequence=1..512` (LO.. for no upper limit, N for one size)."""
    from ..dims import parse_range
    from ..errors import OptionError

    name, sep, bounds = text.partition("=")
    try:
        if not sep or not name:
            raise OptionError("no NAME=")
        return name, parse_range(bounds)
    except OptionError:
        raise argparse.ArgumentTypeError(
            f"expected NAME=LO..HI with 0 <= LO <= HI, such as sequence=1..512, got {text!r}"
        ) from None


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def layer_list(text: str) -> list[int]:
    """"1,3,5": layer numbers, 0-based, as the model's node names number them."""
    parts = text.split(",")
    if not all(part.strip().isdigit() for part in parts):
        raise argparse.ArgumentTypeError(f"expected layer numbers such as 1,3,5, got {text!r}")
    return sorted({int(part) for part in parts})


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600}


def float_where(text: str, holds, expected: str) -> float:
    """`text` as a float for which `holds(value)`; else argparse's one-line error, "expected
    {expected}, got 'text'"."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not holds(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def duration(text: str) -> float:
    """Seconds from 90s, 30m, 1.5h or a plain number of seconds."""
    number, unit = (text[:-1], text[-1]) if text[-1:] in DURATION_UNITS else (text, "s")
    try:
        seconds = float(number) * DURATION_UNITS[unit]
    except ValueError:
        seconds = 0
    if not seconds > 0:
        expected = "expected a duration such as 90s, 30m or 1.5h"
        raise argparse.ArgumentTypeError(f"{expected}, got {text!r}")
    return seconds


def host_port(text: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT such as 127.0.0.1:9190, got {text!r}")
    return text


def add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target",
        default=None,
        help="llvm (the host CPU, detected; the default), cuda, vta, or a JSON dict, e.g. "
        '\'{"kind": "llvm", "mtriple": "aarch64-linux-gnu"}\'',
    )


def add_cuda_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--arch", help="the GPU architecture for --target cuda, e.g. sm_90 (default: the GPU here)"
    )
    parser.add_argument(
        "--precision",
        choices=["fp32", "fp16"],
        default="fp32",
        help="fp16 (CUDA): float16 conv/matmul operands, float32 accumulation (default fp32)",
    )


def add_winograd(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-winograd",
        dest="winograd",
        action="store_false",
        help="CPU: keep 3x3 convs direct, for a smaller library (Winograd's F(4x4, 3x3) has 4x "
        "fewer multiplies, and its transformed weights are 4x the size)",
    )


def add_input_shapes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input-shape",
        dest="input_shapes",
        type=input_shape,
        action="append",
        default=[],
        metavar="NAME=D0,D1,...",
        help="pin a symbolic input shape; repeat for several inputs",
    )


def add_dims(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dim",
        dest="dims",
        type=dim_range,
        action="append",
        default=[],
        metavar="NAME=LO..HI",
        help="the sizes a symbolic dim (by the model's name for it) may take at run; one "
        "library serves them all; repeat for several dims (default: 1 and up)",
    )


def bucket_sizes(text: str):
    """NAME=S1,S2,... as in `--bucket sequence=16,64,128`."""
    from ..buckets import parse_bucket
    from ..errors import OptionError

    try:
        return parse_bucket(text)
    except OptionError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_buckets(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bucket",
        dest="buckets",
        type=bucket_sizes,
        action="append",
        default=[],
        metavar="NAME=S1,S2,...",
        help="also compile static kernels for these sizes of a symbolic dim, inside the same "
        "library: a run of exactly such a size takes them, any other size the symbolic ones",
    )
    parser.add_argument(
        "--bucket-padding", metavar="MASK_INPUT",
        help="runs between buckets pad up to the next bucket (at most 1.25x the elements), "
        "masked by this input (e.g. attention_mask); the compile checks the outputs hold",
    )  # fmt: skip


def add_kv_cache(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kv-cache", choices=["concat", "in-place", "auto"], default="concat",
        help="a decoder's KV cache: past in, past + new out each step (concat, ONNX's "
        "contract), or one preallocated cache per past_* input of the past dim's upper bound + 1 "
        "rows, written in place at input past_length (in-place); auto: in place where possible",
    )  # fmt: skip


def add_opt_level(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-O",
        "--opt-level",
        dest="opt_level",
        type=int,
        choices=range(4),
        default=3,
        metavar="{0,1,2,3}",
        help="0: no graph passes; 1: fold and simplify; 2: + batch-norm/scale folding and "
        "element-wise fusion; 3: + activation recognition and epilogue fusion (default)",
    )
