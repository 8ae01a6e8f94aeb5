"""tvmopt inspect MODEL.onnx [--passes [-O N]]: inputs, outputs, op histogram, unsupported ops,
and with --passes what every pass of the pipeline does to the model."""

from __future__ import annotations

from collections import Counter

from .arguments import add_input_shapes, add_opt_level, add_target


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "inspect", help="describe an ONNX model and what tvmopt supports of it"
    )
    parser.add_argument("model", help="the ONNX model file")
    parser.add_argument(
        "--passes", action="store_true", help="bindings and kernels around each pass"
    )
    add_target(parser)
    add_input_shapes(parser)
    add_opt_level(parser)
    parser.set_defaults(handler=run)


def run(args) -> int:
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


def print_passes(model, args) -> None:
    from ..backends import resolve_target
    from ..frontend.onnx import import_model, prepare
    from ..passes.report import format_report, pass_report

    target = resolve_target(args.target)
    mod = import_model(prepare(model, dict(args.input_shapes)))
    print(f"\npasses at -O{args.opt_level} (kernels: op calls and kernel launches in main):")
    print(format_report(pass_report(mod, args.opt_level, target)))
