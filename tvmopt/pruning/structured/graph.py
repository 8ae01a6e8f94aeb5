"""An editable view of an ONNX graph for pruning: who produces and who consumes each tensor, the
value of constant tensors (initializers and Constant nodes), and replacing a node's constant input.

Weights may be shared between nodes (exporters deduplicate equal initializers), so a pruned
weight is always written as a new initializer for that one node input, never in place; the
originals that nothing reads any more are dropped by `finish`.
"""

from __future__ import annotations

import copy
from collections import defaultdict

import numpy as np
import onnx
from onnx import numpy_helper


class Graph:
    def __init__(self, model: onnx.ModelProto):
        self.model = copy.deepcopy(model)
        self.graph = self.model.graph
        self.nodes = list(self.graph.node)
        self.producer = {out: node for node in self.nodes for out in node.output if out}
        self.consumers = defaultdict(list)
        for node in self.nodes:
            for name in node.input:
                self.consumers[name].append(node)
        self.initializers = {init.name: init for init in self.graph.initializer}
        self.outputs = {out.name for out in self.graph.output}
        self._fresh = 0
        self._shapes = None

    def shape(self, name: str) -> tuple | None:
        """The shape ONNX's shape inference gives `name` (None for a symbolic dim), None where it
        gives none."""
        if self._shapes is None:
            inferred = onnx.shape_inference.infer_shapes(self.model).graph
            infos = [*inferred.value_info, *inferred.input, *inferred.output]
            self._shapes = {info.name: _shape(info) for info in infos}
        return self._shapes.get(name)

    def vector(self, name: str) -> list | None:
        """The entries of a 1-D shape tensor: a constant, or a Concat of pieces as exporters
        build shapes with dynamic axes (None for an entry computed at run time)."""
        value = self.const(name)
        if value is not None:
            return [int(v) for v in value.reshape(-1)]
        node = self.producer.get(name)
        if node is None or node.op_type != "Concat":
            return None
        entries = []
        for piece in node.input:
            length = self._length(piece)
            if length is None:
                return None
            entries += self.vector(piece) or [None] * length
        return entries

    def _length(self, piece: str) -> int | None:
        entries = self.vector(piece)
        return len(entries) if entries is not None else (self.shape(piece) or (None,))[0]

    def set_entry(self, node: onnx.NodeProto, index: int, position: int, value: int) -> bool:
        """Set entry `position` (negative: from the end) of the node's shape input to `value`:
        in a constant, or in the pieces of its Concat, where a run-time piece of one entry becomes
        the constant. False where it cannot."""
        current = self.const(node.input[index])
        if current is not None:
            current = current.copy()
            current[position] = value
            self.set_input(node, index, current)
            return True
        concat = self.producer.get(node.input[index])
        pieces = list(concat.input) if concat is not None and concat.op_type == "Concat" else []
        for piece_index in reversed(range(len(pieces))):
            length = self._length(pieces[piece_index]) or 0
            if -position <= length:
                if self.vector(pieces[piece_index]) is not None:
                    return self.set_entry(concat, piece_index, position, value)
                if length == 1:
                    self.set_input(concat, piece_index, np.array([value], np.int64))
                return length == 1
            position += length
        return False

    def const(self, name: str) -> np.ndarray | None:
        """The value of a constant tensor, None when it is computed or a graph input."""
        if name in self.initializers:
            return numpy_helper.to_array(self.initializers[name])
        node = self.producer.get(name)
        if node is not None and node.op_type == "Identity":
            return self.const(node.input[0])  # how the exporter shares equal initializers
        if node is not None and node.op_type == "Constant" and node.attribute[0].name == "value":
            return numpy_helper.to_array(node.attribute[0].t)
        return None

    def is_scalar_const(self, name: str) -> bool:
        value = self.const(name)
        return value is not None and value.size == 1

    def set_input(self, node: onnx.NodeProto, index: int, value: np.ndarray) -> None:
        """Point the node's `index`th input at a new initializer holding `value`."""
        self._fresh += 1
        name = f"{node.input[index]}_pruned{self._fresh}"
        init = numpy_helper.from_array(np.ascontiguousarray(value), name)
        self.graph.initializer.append(init)
        self.initializers[name] = init
        node.input[index] = name

    def take(self, node: onnx.NodeProto, index: int, keep, axis: int) -> None:
        """Keep only the `keep` entries of the node's constant input along `axis`."""
        self.set_input(node, index, np.take(self.const(node.input[index]), keep, axis=axis))

    def only_consumer(self, tensor: str) -> onnx.NodeProto | None:
        users = self.consumers.get(tensor, [])
        return users[0] if len(users) == 1 and tensor not in self.outputs else None

    def finish(self) -> onnx.ModelProto:
        """The edited model: nodes and constants nothing reads any more (the replaced weights,
        the run-time shape pieces a constant replaced) dropped, stale intermediate shapes
        forgotten."""
        while True:
            read = {name for node in self.graph.node for name in node.input} | self.outputs
            dead = [n for n in self.graph.node if not any(out in read for out in n.output)]
            if not dead:
                break
            for node in dead:
                self.graph.node.remove(node)
        kept = [init for init in self.graph.initializer if init.name in read]
        del self.graph.initializer[:]
        self.graph.initializer.extend(kept)
        del self.graph.value_info[:]
        return self.model


def _shape(info: onnx.ValueInfoProto) -> tuple | None:
    if not info.type.tensor_type.HasField("shape"):
        return None
    dims = info.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)


def attribute(node: onnx.NodeProto, name: str, default=None):
    for attr in node.attribute:
        if attr.name == name:
            return onnx.helper.get_attribute_value(attr)
    return default


def set_attribute(node: onnx.NodeProto, name: str, value) -> None:
    for attr in node.attribute:
        if attr.name == name:
            node.attribute.remove(attr)
            break
    node.attribute.append(onnx.helper.make_attribute(name, value))
