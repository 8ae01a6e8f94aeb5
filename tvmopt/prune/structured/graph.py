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
        """The static shape ONNX's shape inference gives `name`, None where it gives none."""
        if self._shapes is None:
            inferred = onnx.shape_inference.infer_shapes(self.model).graph
            infos = [*inferred.value_info, *inferred.input, *inferred.output]
            self._shapes = {info.name: _static_shape(info) for info in infos}
        return self._shapes.get(name)

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
        """The edited model: unread constants dropped, stale intermediate shapes forgotten."""
        read = {name for node in self.graph.node for name in node.input} | self.outputs
        for node in [n for n in self.graph.node if self._constant(n) and n.output[0] not in read]:
            self.graph.node.remove(node)
        read = {name for node in self.graph.node for name in node.input} | self.outputs
        kept = [init for init in self.graph.initializer if init.name in read]
        del self.graph.initializer[:]
        self.graph.initializer.extend(kept)
        del self.graph.value_info[:]
        return self.model

    def _constant(self, node: onnx.NodeProto) -> bool:
        shared = node.op_type == "Identity" and node.input[0] in self.initializers
        return node.op_type == "Constant" or shared


def _static_shape(info: onnx.ValueInfoProto) -> tuple | None:
    if not info.type.tensor_type.HasField("shape"):
        return None
    dims = info.type.tensor_type.shape.dim
    return (
        None if any(not d.HasField("dim_value") for d in dims) else tuple(d.dim_value for d in dims)
    )


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
