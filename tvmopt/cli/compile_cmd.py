"""tvmopt compile MODEL.onnx -o OUT.so [--target T [--arch SM] [--precision fp16] [--cuda-graph]]
[--input-shape NAME=DIMS] [--dim NAME=LO..HI] [--bucket NAME=S1,S2,...] [-O N]
[--db DIR] [--emit-header FILE.h] [--sparse off|auto|force]
[--quantize int8 --calib DATA [--calib-method M] [--skip NODE...]]
[--quantize int4-weights|int8-weights[-a8] [--group-size 32|64|128]]"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from .arguments import (
    add_buckets,
    add_cuda_options,
    add_dims,
    add_input_shapes,
    add_kv_cache,
    add_opt_level,
    add_target,
    add_winograd,
)
from .quantize_args import add_calibration, add_group_size, quantize_options


def register(subparsers) -> None:
    parser = subparsers.add_parser("compile", help="compile an ONNX model into a shared library")
    parser.add_argument("model", help="the ONNX model file")
    parser.add_argument("-o", "--output", help="the library to write (default: MODEL with .so)")
    add_target(parser)
    parser.add_argument(
        "--isa-variant",
        metavar="TARGET",
        action="append",
        default=[],
        help="also compile for this CPU target (repeatable), e.g. --target x86-64-v3 "
        "--isa-variant x86-64-v4: the library holds both and runs the best the CPU has",
    )
    add_cuda_options(parser)
    parser.add_argument(
        "--cuda-graph",
        action="store_true",
        help="CUDA: capture the kernels into a CUDA graph on the first run and replay it with "
        "one launch",
    )
    add_input_shapes(parser)
    add_dims(parser)
    add_buckets(parser)
    add_kv_cache(parser)
    add_opt_level(parser)
    add_winograd(parser)
    parser.add_argument(
        "--sparse",
        choices=["off", "auto", "force"],
        default="auto",
        help="CPU, -O3: matmuls whose constant weight has zeros run a sparse kernel where it is "
        "estimated faster (auto, the default), wherever the weight has a zero (force), or never",
    )
    parser.add_argument("--dump-ir", metavar="DIR", help="write the IR after every pass into DIR")
    parser.add_argument("--print-pass-times", action="store_true", help="time every pass")
    parser.add_argument(
        "--db", metavar="DIR", help="apply the best records of a tuning database (tvmopt tune)"
    )
    parser.add_argument(
        "--emit-header",
        metavar="FILE.h",
        help="also write a C++ header with the inputs' and outputs' names, shapes and dtypes",
    )
    parser.add_argument(
        "--quantize",
        choices=["int8", "vta", "int4-weights", "int8-weights", "int4-weights-a8",
                 "int8-weights-a8"],
        help="post-training quantization; vta: VTA's power-of-two recipe (what --target vta "
        "runs), on any target; int4-weights, int8-weights: matmul weights only, in groups along "
        "K, dequantized inside the kernel (CPU targets, no calibration); -a8: activations "
        "rounded to int8 per group, integer dot products (ONNX Runtime's accuracy level 4)",
    )
    add_group_size(parser)
    add_calibration(parser)
    parser.set_defaults(handler=run)


def run(args) -> int:
    from ..api import compile as compile_model
    from ..artifact import check_writable
    from ..backends import target_argument
    from ..backends.cuda.graph import describe_capture
    from ..backends.llvm.sparse_weights import SPARSE_RECORD
    from ..backends.llvm.sparse_weights import describe as describe_layer
    from ..deploy.header import header_for, write_header

    output = check_writable(args.output or Path(args.model).with_suffix(".so").name)
    start = time.perf_counter()
    quantization = quantize_options(args) if args.quantize else {}
    compiled = compile_model(
        args.model,
        target=target_argument(args.target, args.arch),
        precision=args.precision,
        input_shapes=dict(args.input_shapes),
        dims=dict(args.dims),
        buckets=dict(args.buckets) or None,
        bucket_padding=args.bucket_padding,
        kv_cache=args.kv_cache,
        opt_level=args.opt_level,
        dump_ir=args.dump_ir,
        print_pass_times=args.print_pass_times,
        log=lambda line: print(line, file=sys.stderr),
        db=args.db,
        winograd=args.winograd,
        cuda_graph=args.cuda_graph,
        group_size=args.group_size,
        sparse=args.sparse,
        isa_variants=[target_argument(variant, None) for variant in args.isa_variant],
        **quantization,
    )
    header = header_for(compiled.metadata, args.emit_header) if args.emit_header else None
    compiled.export(output)  # after the header is known to be writable: both files or none
    if header is not None:
        write_header(header, args.emit_header)
    seconds = time.perf_counter() - start
    size_mb = output.stat().st_size / 2**20
    print(f"wrote {output} ({size_mb:.1f} MiB) in {seconds:.1f} s: {compiled!r}")
    print(f"target: {json.dumps(compiled.metadata.target)}")
    if args.db is not None:
        print(f"tuned kernels from {args.db}: {compiled.tuned_kernels}")
    if "cuda_graph" in compiled.metadata.extra:
        print(describe_capture(compiled.metadata.extra["cuda_graph"]))
    if header is not None:
        print(f"wrote {args.emit_header}")
    for layer in compiled.metadata.extra.get(SPARSE_RECORD, []):
        print(f"sparse: {describe_layer(layer)}")
    return 0
