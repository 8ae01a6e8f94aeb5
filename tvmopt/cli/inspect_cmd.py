"""tvmopt inspect MODEL.onnx: inputs, outputs, op histogram and unsupported ops."""

from __future__ import annotations

from collections import Counter


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "inspect", help="describe an ONNX model and what tvmopt supports of it"
    )
    parser.add_argument("model", help="the ONNX model file")
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
    return 0
