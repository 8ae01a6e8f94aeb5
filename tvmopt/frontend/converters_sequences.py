"""Converters for ONNX's sequence ops, which TVM's importer maps to Relax tuples of static length.

TVM's converters index a sequence as a Python list, which only a literal relax.Tuple is:
SplitToSequence gives a call to split (tuple-typed, not a Tuple), so a SequenceLength, At,
Erase, Insert or ConcatFromSequence of it failed to import. Here a sequence is read through its
type, whatever expression holds it. SequenceInsert also put a negative position one place too
far back: ONNX counts it as Python's list.insert does (-1 inserts before the last tensor).

Identity of a sequence came out as its first tensor; now it is the sequence.

SequenceMap, which TVM lacks, runs its body once per element: the length is static, so the map
unrolls into one copy of the body per element, each converted by TVM's own subgraph importer.
"""

from __future__ import annotations

import functools

from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend

from .converter_values import constant_int


def sequence_items(bb, sequence) -> list:
    """The tensors of a sequence, a literal Tuple or any tuple-typed expression."""
    if isinstance(sequence, relax.Tuple):
        return list(sequence.fields)
    bound = bb.normalize(sequence)
    return [bb.emit(relax.TupleGetItem(bound, i)) for i in range(len(bound.ty.fields))]


def _checked(position: int, length: int, what: str) -> int:
    """A position in [-length, length) counted from the front."""
    if not -length <= position < length:
        raise ValueError(f"{what} {position} is out of bounds for a sequence of {length}")
    return position % length


class SequenceAt(onnx_frontend.SequenceAt):
    @classmethod
    def _impl_v11(cls, bb, inputs, attr, params):
        items = sequence_items(bb, inputs[0])
        return items[_checked(constant_int(inputs[1], "SequenceAt's position"), len(items),
                              "SequenceAt's position")]  # fmt: skip


class SequenceLength(onnx_frontend.SequenceLength):
    @classmethod
    def _impl_v11(cls, bb, inputs, attr, params):
        return relax.const(len(sequence_items(bb, inputs[0])), "int64")


class SequenceErase(onnx_frontend.SequenceErase):
    @classmethod
    def _impl_v11(cls, bb, inputs, attr, params):
        items = sequence_items(bb, inputs[0])
        given = -1 if len(inputs) < 2 or inputs[1] is None else constant_int(inputs[1], "position")
        del items[_checked(given, len(items), "SequenceErase's position")]
        return relax.Tuple(items)


class SequenceInsert(onnx_frontend.SequenceInsert):
    @classmethod
    def _impl_v11(cls, bb, inputs, attr, params):
        items = sequence_items(bb, inputs[0])
        if len(inputs) < 3 or inputs[2] is None:
            return relax.Tuple([*items, inputs[1]])
        position = constant_int(inputs[2], "SequenceInsert's position")
        if not -len(items) <= position <= len(items):  # the end itself is a place to insert
            raise ValueError(f"SequenceInsert's position {position} is out of bounds for a "
                             f"sequence of {len(items)}")  # fmt: skip
        items.insert(position + len(items) if position < 0 else position, inputs[1])
        return relax.Tuple(items)


class ConcatFromSequence(onnx_frontend.ConcatFromSequence):
    @classmethod
    def _impl_v11(cls, bb, inputs, attr, params):
        tensors = relax.Tuple(sequence_items(bb, inputs[0]))
        return super()._impl_v11(bb, [tensors], attr, params)


class SequenceMap(onnx_frontend.OnnxOpConverter):
    """The body converted once per element; opset-aware, as the body's ops are."""

    @classmethod
    def get_converter(cls, opset):
        return functools.partial(cls._unrolled, opset=opset)

    @classmethod
    def _unrolled(cls, bb, inputs, attr, params, opset):
        body = attr["body"]
        # each input as its list of tensors, a tensor input as that tensor for every element
        columns = [sequence_items(bb, x) if isinstance(x.ty, relax.TupleType) else x
                   for x in inputs]  # fmt: skip
        length = len(columns[0])
        if any(isinstance(c, list) and len(c) != length for c in columns):
            raise ValueError("SequenceMap's sequence inputs differ in length")
        per_element = [
            _body_result(bb, body, opset, params[0], [c[i] if isinstance(c, list) else c
                                                      for c in columns])
            for i in range(length)
        ]  # fmt: skip
        outputs = [relax.Tuple([result[k] for result in per_element])
                   for k in range(len(body.output))]  # fmt: skip
        return relax.Tuple(outputs) if len(outputs) > 1 else one_output(outputs[0])


class Identity(onnx_frontend.Identity):
    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        x = inputs[0]
        return one_output(x) if isinstance(x.ty, relax.TupleType) else x


def one_output(sequence):
    """A sequence as a one-output node's result. TVM's importer reads a Tuple result as the
    node's outputs, one per field: the unused second field keeps the sequence whole (the
    fields past the node's outputs are dropped)."""
    return relax.Tuple([sequence, relax.Tuple([])])


def _body_result(bb, body, opset, outer, values) -> list:
    """The body's outputs with its inputs bound to `values` (and outer names visible)."""
    bound = {value.name: x for value, x in zip(body.input, values, strict=True)}
    importer = onnx_frontend.ONNXGraphImporter({}, {})
    importer.bb, importer.opset, importer._nodes = bb, opset, {**outer, **bound}
    result = importer._convert_subgraph(bb, body)
    results = list(result.fields) if len(body.output) > 1 else [result]
    # a sequence holds tensors: a shape the importer kept as a shape value becomes one
    return [bb.normalize(relax.op.shape_to_tensor(x)) if isinstance(x.ty, relax.ShapeType) else x
            for x in results]  # fmt: skip


OPS = {
    "SequenceAt": SequenceAt,
    "SequenceLength": SequenceLength,
    "SequenceErase": SequenceErase,
    "SequenceInsert": SequenceInsert,
    "ConcatFromSequence": ConcatFromSequence,
    "SequenceMap": SequenceMap,
    "Identity": Identity,
}
