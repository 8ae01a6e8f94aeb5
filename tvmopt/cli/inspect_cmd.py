"""tvmopt inspect MODEL.onnx [--passes [-O N]]: inputs, outputs, op histogram, unsupported ops,
and with --passes what every pass of the pipeline does to the model. tvmopt inspect LIB.so: what
a compiled library records: backend, target, precision, quantization, inputs and outputs."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from ..artifact import ELF_MAGIC
from ..kv_cache import KV_CACHE_RECORD
from ..kv_cache import describe as describe_kv_cache
from .arguments import add_input_shapes, add_opt_level, add_target


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "inspect", help="describe an ONNX model and what tvmopt supports of it, or a library"
    )
    parser.add_argument("model", help="the ONNX model file, or a library tvmopt compiled")
    parser.add_argument(
        "--passes", action="store_true", help="bindings and kernels around each pass"
    )
    add_target(parser)
    add_input_shapes(parser)
    add_opt_level(parser)
    parser.set_defaults(handler=run)


def run(args) -> int:
    if _is_library(args.model):
        print_library(args.model)
        return 0
    from ..frontend.onnx import load_model, opset_of
    from ..frontend.signature import graph_inputs, graph_outputs
    from ..frontend.support import describe_gaps, find_unsupported, qualified_op

    model = load_model(args.model)
    graph = model.graph
    print(f"model: {args.model} (producer {model.producer_name or '?'}, opset {opset_of(model)})")
    for spec in graph_inputs(graph):
        print(f"input  {spec.describe()}")
    for spec in graph_outputs(graph):
        print(f"output {spec.describe()}")
    histogram = Counter(qualified_op(node) for node in graph.node)
    print(f"{len(graph.node)} nodes, {len(graph.initializer)} initializers; ops:")
    for op, count in histogram.most_common():
        print(f"  {op:<28} {count}")
    gaps = find_unsupported(graph)
    print(f"unsupported: {describe_gaps(gaps)}" if gaps else "unsupported: none")
    if args.passes:
        print_passes(model, args)
    return 0


def _is_library(path) -> bool:
    try:
        with open(path, "rb") as stream:
            return stream.read(4) == ELF_MAGIC
    except OSError:
        return False  # the ONNX loader says what is wrong with the path


def print_library(path) -> None:
    """What the library records, read without loading it: a library for another CPU, or
    another machine, is described as well."""
    from ..artifact import read_metadata
    from ..buckets import BUCKETS_RECORD
    from ..dims import DimRange

    metadata = read_metadata(path)
    print(f"library: {path} ({Path(path).stat().st_size / 2**20:.1f} MiB; tvmopt "
          f"{metadata.tvmopt_version}, TVM {metadata.tvm_version})")  # fmt: skip
    print(f"backend: {metadata.backend}")
    print(f"target: {json.dumps(metadata.target)}")
    print(f"precision: {metadata.precision}")
    print(f"quantization: {metadata.quantization}")
    for spec in metadata.inputs:
        print(f"input  {spec.describe()}")
    for spec in metadata.outputs:
        print(f"output {spec.describe()}")
    for name, (lo, hi) in metadata.dims.items():
        print(f"dim    {name}: {DimRange(lo, hi).describe()}" + ("" if hi else " (no limit)"))
    for bucket in metadata.extra.get(BUCKETS_RECORD, []):
        sizes = ", ".join(f"{name}={size}" for name, size in bucket["dims"].items())
        print(f"bucket {sizes}: static kernels ({bucket['function']})")
    for key, record in metadata.extra.items():
        if key == KV_CACHE_RECORD:
            print(describe_kv_cache(record))  # KV cache: in place, capacity C
        elif key != BUCKETS_RECORD:
            print(f"{key}: {_summary(key, record)}")


def _summary(key: str, record) -> str:
    """A backend's record in one line: VTA's layer placement is a list per layer, the CPU record
    the features its code needs, the kernels' record a count per schedule rule."""
    from ..backends.kernel_record import KERNELS_RECORD
    from ..backends.llvm.sparse_weights import SPARSE_RECORD
    from ..backends.llvm.sparse_weights import describe as describe_layer
    from ..isa_variants import VARIANTS_RECORD

    if key == SPARSE_RECORD:  # one line per matmul with a constant weight
        kernels = Counter(str(layer["kernel"]) for layer in record)
        counts = ", ".join(f"{kernel} {count}" for kernel, count in kernels.most_common())
        return f"{len(record)} constant weights ({counts})" + "".join(
            f"\n  {describe_layer(layer)}" for layer in record
        )
    if key == "bucket_padding":
        return (f"runs between buckets pad up to one holding at most {record['limit']}x their "
                f"elements, masked by input '{record['mask']}'")  # fmt: skip
    if key == VARIANTS_RECORD:
        lines = [f"\n  {_summary('cpu', variant['cpu'])} (section {variant['section']})"
                 for variant in record]  # fmt: skip
        return "".join(lines) + "\n  (loading runs the first this CPU has, else cpu's code)"
    if key == KERNELS_RECORD:
        rules = Counter(str(kernel["rule"]) for kernel in record.values())
        counts = ", ".join(f"{rule} {count}" for rule, count in rules.most_common())
        return f"{len(record)} ({counts}; tvmopt run --profile times them)"
    if isinstance(record, dict) and "layers" in record:
        return f"{len(record['layers'])} layers placed"
    if isinstance(record, dict) and "features" in record:
        return (f"{record['arch']} {record['mcpu']} ({record['isa']}); needs "
                f"{' '.join(record['features']) or 'nothing beyond the base ISA'}")  # fmt: skip
    return json.dumps(record)


def print_passes(model, args) -> None:
    from ..backends import resolve
    from ..frontend.onnx import import_model, prepare
    from ..passes.report import format_report, pass_report

    backend = resolve(args.target)
    mod = import_model(prepare(model, dict(args.input_shapes)))
    print(f"\npasses at -O{args.opt_level} (kernels: op calls and kernel launches in main):")
    steps = pass_report(mod, backend.graph_passes(args.opt_level),
                        backend.lowering_passes(args.opt_level), backend.target)  # fmt: skip
    print(format_report(steps))
