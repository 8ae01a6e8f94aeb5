"""Whole transformer layers dropped: the shallower student of DistilBERT-style distillation.

Layers are found by the module path the exporters record: the node name of torch.onnx.export's
TorchScript exporter (`/encoder/layer.3/attention/...`, GPT-2's `/transformer/h.3/...`) or the
dynamo exporter's name scopes (node metadata). A layer maps one hidden state to the next, so
dropping it routes its input to where its output went (an Identity that keeps the output's
name) and removes what nothing reads any more, weights included.

A layer's hidden input is told from the other tensors it reads (the attention mask, shapes
computed once for every layer) as the one no neighbouring layer also reads.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass

import onnx
from onnx import helper

from ...errors import InputError

# a list of blocks as Hugging Face and timm name them; the first in a path counts (T5's
# block.N.layer.M is block N)
LAYER_PATH = re.compile(r"(?:^|[/.'])(?:layer|layers|h|block|blocks)\.(\d+)(?!\d)")
SCOPES_KEY = "pkg.torch.onnx.name_scopes"


@dataclass(frozen=True)
class LayerSpan:
    """Layer `index`: its nodes, the hidden state it reads and the one it writes."""

    index: int
    nodes: tuple[onnx.NodeProto, ...]
    hidden_in: str
    hidden_out: str


def layer_index(node: onnx.NodeProto) -> int | None:
    """The layer a node belongs to, from its name or the dynamo exporter's name scopes."""
    scopes = next((p.value for p in node.metadata_props if p.key == SCOPES_KEY), "")
    for text in (node.name, scopes):
        match = LAYER_PATH.search(text)
        if match:
            return int(match.group(1))
    return None


def find_layers(graph: onnx.GraphProto) -> dict[int, list[onnx.NodeProto]]:
    """Layer index -> its nodes, in graph order. A node the exporter left without a path (the
    dynamo exporter's Split of a fused QKV) joins the layer it sits inside: the one layer its
    inputs come from and its outputs go to."""
    nodes = list(graph.node)  # protobuf hands out a new wrapper per access: hold these
    labels = [layer_index(node) for node in nodes]
    while _adopt_orphans(nodes, labels):
        pass
    layers: dict[int, list[onnx.NodeProto]] = {}
    for node, label in zip(nodes, labels, strict=True):
        if label is not None:
            layers.setdefault(label, []).append(node)
    return dict(sorted(layers.items()))


def _adopt_orphans(nodes: list, labels: list) -> bool:
    producer = {out: position for position, node in enumerate(nodes) for out in node.output}
    consumers: dict[str, list[int]] = {}
    for position, node in enumerate(nodes):
        for name in node.input:
            consumers.setdefault(name, []).append(position)
    adopted = False
    for position, node in enumerate(nodes):
        if labels[position] is not None:
            continue
        around = [producer[name] for name in node.input if name in producer]
        around += [c for out in node.output for c in consumers.get(out, [])]
        found = {labels[other] for other in around}
        if len(found) == 1 and None not in found:
            labels[position] = found.pop()
            adopted = True
    return adopted


def drop_layers(model: onnx.ModelProto, drop: Sequence[int]) -> onnx.ModelProto:
    """A copy of `model` without the layers numbered in `drop` (0-based, as the model's names
    number them); inputs and outputs stay as they were."""
    layers = find_layers(model.graph)
    _check(layers, drop)
    hidden, constant = _hidden_states(model), _constants(model.graph)
    spans = [_span(model.graph, layers, index, hidden, constant) for index in sorted(set(drop))]
    pruned = copy.deepcopy(model)
    graph = pruned.graph
    # a bridge takes the place of the node that wrote its layer's output: what read that
    # output comes after it, the layer's input before it (and a dropped neighbour's bridge).
    # The rest of the layer goes as dead code, but for what other layers read of it (shapes
    # the dynamo exporter computes once, in the first layer that needs them)
    bridge_at = {s.hidden_out: _bridge(s) for s in spans}
    nodes = []
    for node in graph.node:
        written = [bridge_at[out] for out in node.output if out in bridge_at]
        nodes += written or [node]
    del graph.node[:]
    graph.node.extend(nodes)
    remove_unused(graph)
    return pruned


def _bridge(span: LayerSpan) -> onnx.NodeProto:
    return helper.make_node("Identity", [span.hidden_in], [span.hidden_out],
                            name=f"dropped_layer_{span.index}")  # fmt: skip


def _check(layers: dict, drop: Sequence[int]) -> None:
    if not layers:
        raise InputError("found no layers to drop: no node's name or name scope holds a "
                         "layer path such as layer.0, layers.0, h.0 or block.0")  # fmt: skip
    unknown = sorted(set(drop) - set(layers))
    if unknown or not drop:
        raise InputError(f"no layer {', '.join(map(str, unknown)) or '(none given)'} to drop: "
                         f"the model's layers are {_ranges(list(layers))}")  # fmt: skip
    if set(drop) >= set(layers):
        raise InputError(f"dropping layers {_ranges(sorted(set(drop)))} would leave none")


def _hidden_states(model: onnx.ModelProto) -> set[str] | None:
    """Floating-point tensors of rank 3 (batch, sequence, width): what a transformer layer
    hands to the next; None where shape inference cannot tell."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model).graph
    except Exception:  # noqa: BLE001 (a model over 2 GiB, an op it does not know)
        return None
    values = list(inferred.value_info) + list(inferred.input) + list(inferred.output)
    return {v.name for v in values if _is_hidden(v.type.tensor_type)}


def _is_hidden(tensor_type) -> bool:
    floating = tensor_type.elem_type in FLOATING
    return floating and tensor_type.HasField("shape") and len(tensor_type.shape.dim) == 3


FLOATING = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16,
            onnx.TensorProto.DOUBLE}  # fmt: skip


def _span(graph: onnx.GraphProto, layers: dict, index: int, hidden: set | None,
          constant: set[str]) -> LayerSpan:  # fmt: skip
    nodes = layers[index]
    writes = _external_writes(graph, nodes)
    writes = [name for name in writes if hidden is None or name in hidden]
    if len(writes) != 1:
        raise InputError(f"layer {index} hands {len(writes)} hidden states to the rest of "
                         f"the model ({', '.join(writes) or 'none'}), not one: cannot drop "
                         "it")  # fmt: skip
    reads = _external_reads(nodes, constant)
    reads = [name for name in reads if hidden is None or name in hidden]
    if len(reads) > 1:  # others that every layer reads (the mask) are not the hidden state
        neighbour = index + 1 if index + 1 in layers else max(i for i in layers if i < index)
        shared = set(_external_reads(layers[neighbour], constant))
        reads = [name for name in reads if name not in shared]
    if len(reads) != 1:
        raise InputError(f"layer {index}: cannot tell its hidden state input among "
                         f"{', '.join(reads) or 'no tensor'}")  # fmt: skip
    return LayerSpan(index, tuple(nodes), reads[0], writes[0])


def _external_reads(nodes: list, constant: set[str]) -> list[str]:
    """Tensors the nodes read that come from outside them and are not `constant`."""
    inside = {out for node in nodes for out in node.output}
    names = [name for node in nodes for name in node.input if name]
    return list(dict.fromkeys(n for n in names if n not in inside and n not in constant))


def _external_writes(graph: onnx.GraphProto, nodes: list) -> list[str]:
    mine = {out for node in nodes for out in node.output}
    read_outside = {name for node in graph.node if not mine.intersection(node.output)
                    for name in node.input}  # fmt: skip
    read_outside |= {value.name for value in graph.output}
    return [out for node in nodes for out in node.output if out in read_outside]


def _constants(graph: onnx.GraphProto) -> set[str]:
    """Initializers and what nodes compute from them alone (Constant, Identity of a weight)."""
    constant = {tensor.name for tensor in graph.initializer}
    for node in graph.node:  # topological order: one pass
        if all(name in constant for name in node.input if name):
            constant.update(node.output)
    return constant


def remove_unused(graph: onnx.GraphProto) -> None:
    """Nodes whose outputs nothing reads, then initializers and value_info nothing names."""
    needed = {value.name for value in graph.output}
    live = []
    for node in reversed(graph.node):
        if any(out in needed for out in node.output):
            live.append(node)
            needed.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(live))
    initializers = [t for t in graph.initializer if t.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    produced = {out for node in graph.node for out in node.output}
    value_info = [v for v in graph.value_info if v.name in produced]
    del graph.value_info[:]
    graph.value_info.extend(value_info)


def _ranges(indices: list[int]) -> str:
    return ", ".join(map(str, indices))
