"""Copies of a subgraph (a Scan or Loop body) as nodes of the enclosing graph, values renamed.

    body(state_in, x_t) { y = Add(state_in, x_t); out = Mul(y, outer_w) }
      bound to (s0, x_0) -> step0_y = Add(s0, x_0); step0_out = Mul(step0_y, outer_w)

Unrolling a loop instantiates its body once per iteration: the body's inputs become the values
bound to them, every name the body defines (node outputs, initializers, and those of subgraphs
nested in it) gets a fresh name, and names the body reads from an outer scope are kept.
"""

from __future__ import annotations

from collections.abc import Iterable

import onnx

from .support import nodes_within, subgraphs


class FreshNames:
    """Names not used anywhere in a model, handed out once each."""

    def __init__(self, graph: onnx.GraphProto):
        read = {name for node in graph.node for inner in nodes_within(node) for name in inner.input}
        self._used = set(defined_names(graph)) | read

    def fresh(self, hint: str) -> str:
        name, suffix = hint, 0
        while name in self._used:
            suffix += 1
            name = f"{hint}_{suffix}"
        self._used.add(name)
        return name


def defined_names(graph: onnx.GraphProto) -> Iterable[str]:
    """The values `graph` defines: inputs, initializers and node outputs, nested ones too."""
    yield from (value.name for value in graph.input)
    yield from (tensor.name for tensor in graph.initializer)
    for node in graph.node:
        yield from (name for name in node.output if name)
        for sub in subgraphs(node):
            yield from defined_names(sub)


def instantiate(body: onnx.GraphProto, bound: list[str], names: FreshNames, stem: str):
    """One copy of `body` with its inputs bound to the values named in `bound`.

    Returns
    -------
    tuple of (list of NodeProto, list of TensorProto, list of str)
        The renamed nodes, the body's initializers (renamed: the caller adds them to the outer
        graph), and the names that hold the body's outputs.
    """
    renames = dict(zip((value.name for value in body.input), bound, strict=True))
    for name in defined_names(body):
        renames.setdefault(name, names.fresh(f"{stem}_{name}"))
    nodes = [_renamed_node(node, renames, stem) for node in body.node]
    initializers = [_renamed_tensor(tensor, renames) for tensor in body.initializer]
    outputs = [renames.get(value.name, value.name) for value in body.output]
    return nodes, initializers, outputs


def _renamed_node(node: onnx.NodeProto, renames: dict, stem: str) -> onnx.NodeProto:
    copied = onnx.NodeProto()
    copied.CopyFrom(node)
    copied.name = f"{stem}_{node.name}" if node.name else ""
    _rename_in_node(copied, renames)
    return copied


def _rename_in_node(node: onnx.NodeProto, renames: dict) -> None:
    node.input[:] = [renames.get(name, name) for name in node.input]
    node.output[:] = [renames.get(name, name) for name in node.output]
    for sub in subgraphs(node):
        _rename_in_graph(sub, renames)


def _rename_in_graph(graph: onnx.GraphProto, renames: dict) -> None:
    for value in [*graph.input, *graph.output, *graph.value_info]:
        value.name = renames.get(value.name, value.name)
    for tensor in graph.initializer:
        tensor.name = renames.get(tensor.name, tensor.name)
    for node in graph.node:
        _rename_in_node(node, renames)


def _renamed_tensor(tensor: onnx.TensorProto, renames: dict) -> onnx.TensorProto:
    copied = onnx.TensorProto()
    copied.CopyFrom(tensor)
    copied.name = renames[tensor.name]
    return copied
