"""Sequence and optional values at the ONNX backend's boundary, carried as tensors.

A compiled model takes and returns tensors. onnx's tests feed a sequence as a list of arrays and
an optional as None or its value, and expect the same back. Given the values, each sequence's
length is known, so the backend rewrites the model once per input structure (as it compiles once
per input shape) into a tensor-only one:

    sequence input x given n arrays -> tensor inputs x_0 .. x_n-1 -> SequenceConstruct -> x
                                       (given none: SequenceEmpty of the element type)
    optional input x given a value  -> the value's tensor inputs -> Optional -> x
                     given None     -> Optional<type>() -> x
    sequence output y of n tensors  -> SequenceAt(y, 0 .. n-1) -> tensor outputs, read as a list
    optional output y               -> its value's outputs, or none where it is empty (None)

How long an output sequence is and whether an optional output holds a value is what TVM's importer
made of them: `tensor_boundary` imports the model to read that off, before the backend compiles
the rewritten model. The values themselves are only ever computed by the compiled model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper

from ..errors import UnsupportedOpError
from .support import nodes_within

TENSOR, SEQUENCE = "tensor", "sequence"
FLOAT = onnx.TensorProto.FLOAT


def value_kind(type_proto: onnx.TypeProto) -> str | None:
    """'tensor', 'sequence' (of tensors), 'optional tensor', 'optional sequence', or None."""
    kind = type_proto.WhichOneof("value")
    if kind == "tensor_type":
        return TENSOR
    if kind == "sequence_type":
        return SEQUENCE if value_kind(type_proto.sequence_type.elem_type) == TENSOR else None
    if kind == "optional_type":
        inner = value_kind(type_proto.optional_type.elem_type)
        return f"optional {inner}" if inner in (TENSOR, SEQUENCE) else None
    return None


def check_boundary(graph: onnx.GraphProto) -> None:
    """Refuse up front what cannot cross as tensors: maps, sparse tensors, nested sequences."""
    for role, values in (("input", graph.input), ("output", graph.output)):
        for value in values:
            if value_kind(value.type) is None:
                kind = value.type.WhichOneof("value")
                raise UnsupportedOpError(
                    f"graph {role} '{value.name}' is a {kind} tvmopt cannot pass; it handles "
                    "tensors, sequences of tensors and optionals of either"
                )


def is_tensor_only(graph: onnx.GraphProto) -> bool:
    return all(value_kind(v.type) == TENSOR for v in [*graph.input, *graph.output])


def structure(value) -> object:
    """What the rewrite depends on: an array's shape, a list's shapes, None."""
    if value is None:
        return None
    if isinstance(value, list):
        return tuple(np.shape(item) for item in value)
    return np.shape(value)


@dataclass(frozen=True)
class TensorBoundary:
    """How values cross a tensor-only model.

    `inputs` maps each sequence or optional graph input to the tensor inputs carrying it;
    `outputs` names, for each graph output, its tensor output (str), its sequence's (list) or
    nothing (None: an empty optional).
    """

    inputs: dict[str, list[str]]
    outputs: list

    def arrays(self, values: dict) -> dict[str, np.ndarray]:
        """The tensor inputs for the graph inputs' `values`."""
        arrays = {}
        for name, value in values.items():
            leaves = [] if value is None else value if isinstance(value, list) else [value]
            arrays.update(zip(self.inputs.get(name, [name]), map(np.asarray, leaves), strict=True))
        return arrays

    def results(self, tensors: dict[str, np.ndarray]) -> tuple:
        """The graph outputs from the tensor outputs: arrays, lists of arrays, None."""
        return tuple(_read(names, tensors) for names in self.outputs)


def _read(names, tensors: dict):
    if names is None:
        return None
    return [tensors[name] for name in names] if isinstance(names, list) else tensors[names]


def tensor_inputs(model: onnx.ModelProto, values: dict) -> tuple[onnx.ModelProto, dict]:
    """A copy of `model` whose sequence and optional inputs are built from tensor inputs, and
    which tensor inputs carry each (`TensorBoundary.inputs`)."""
    rewritten = onnx.ModelProto()
    rewritten.CopyFrom(model)
    graph, taken = rewritten.graph, names_in(rewritten.graph)
    kept, producers, carried = [], [], {}
    for value in graph.input:
        kind = value_kind(value.type)
        if kind == TENSOR or value.name not in values:
            kept.append(value)
            continue
        elements, nodes = _carrying(value.name, value.type, values[value.name], taken)
        carried[value.name] = [element.name for element in elements]
        kept.extend(elements)
        producers.extend(nodes)
    del graph.input[:]
    graph.input.extend(kept)
    nodes = [*producers, *graph.node]
    del graph.node[:]
    graph.node.extend(nodes)
    return rewritten, carried


def _carrying(name: str, type_proto: onnx.TypeProto, given, taken: set) -> tuple[list, list]:
    """The tensor inputs holding `given`, and the nodes that build the value `name` from them."""
    kind = value_kind(type_proto)
    if kind == TENSOR:
        return [_tensor_value(name, type_proto.tensor_type.elem_type, given)], []
    if kind == SEQUENCE:
        return _sequence_from(name, type_proto.sequence_type.elem_type, given, taken)
    inner_type = type_proto.optional_type.elem_type
    if given is None:
        return [], [helper.make_node("Optional", [], [name], type=inner_type)]
    inner = fresh_name(f"{name}_value", taken)
    elements, nodes = _carrying(inner, inner_type, given, taken)
    return elements, [*nodes, helper.make_node("Optional", [inner], [name])]


def _sequence_from(name: str, elem_type: onnx.TypeProto, given, taken: set):
    dtype = elem_type.tensor_type.elem_type
    if not isinstance(given, list):
        raise UnsupportedOpError(f"input '{name}' is a sequence: give it as a list of arrays, "
                                 f"got {type(given).__name__}")  # fmt: skip
    if not given:  # SequenceEmpty's own default element type is float
        return [], [helper.make_node("SequenceEmpty", [], [name], dtype=dtype or FLOAT)]
    elements = [_tensor_value(fresh_name(f"{name}_{i}", taken), dtype, array)
                for i, array in enumerate(given)]  # fmt: skip
    return elements, [helper.make_node("SequenceConstruct", [e.name for e in elements], [name])]


def _tensor_value(name: str, elem_type: int, array) -> onnx.ValueInfoProto:
    """A fully shaped tensor input; of the declared element type, else of the array's."""
    array = np.asarray(array)
    elem_type = elem_type or helper.np_dtype_to_tensor_dtype(array.dtype)
    return helper.make_tensor_value_info(name, elem_type, array.shape)


def names_in(graph: onnx.GraphProto) -> set[str]:
    """Every value name the graph (and its subgraphs) uses."""
    names = {v.name for v in [*graph.input, *graph.output, *graph.value_info]}
    names |= {init.name for init in graph.initializer}
    for node in graph.node:
        names |= {name for inner in nodes_within(node) for name in [*inner.input, *inner.output]}
    return names


def fresh_name(base: str, taken: set) -> str:
    name = base
    while name in taken:
        name += "_"
    taken.add(name)
    return name
