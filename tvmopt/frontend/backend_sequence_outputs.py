"""Sequence and optional graph outputs, rewritten into tensor outputs for the ONNX backend.

    optional output y, empty      -> dropped (the backend returns None)
    optional output y, holding v  -> OptionalGetElement(y) -> y_value
    sequence output y of n        -> SequenceAt(y, i) -> y_0 .. y_n-1 (the backend returns a list)

Whether an optional holds a value and how long a sequence is are static in TVM's import (tuples
of fixed length, emptiness known while converting), so they are read off an import of the model:
OptionalHasElement's constant, the length of the returned tuple's type. Run on a model whose
inputs are tensors already (backend_sequences.tensor_inputs).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper
from tvm import relax

from .._tvm import tvm
from ..errors import CompileError
from .backend_sequences import SEQUENCE, TENSOR, fresh_name, names_in, value_kind
from .onnx import import_model, prepare


def tensor_outputs(model: onnx.ModelProto, input_shapes: dict) -> tuple[onnx.ModelProto, list]:
    """A model whose outputs are tensors, and for each original output the names of the tensor
    outputs holding it: a name, a list of names (a sequence), or None (an empty optional)."""
    if all(value_kind(out.type) == TENSOR for out in model.graph.output):
        return model, [out.name for out in model.graph.output]
    model = _copy(model)
    taken = names_in(model.graph)
    plan = _unwrapped_optionals(model, _holding(model, input_shapes, taken), taken)
    if not model.graph.output:
        raise CompileError("every output of the model is an empty optional: nothing to compile")
    lengths = _sequence_lengths(model, input_shapes)
    return model, _split_sequences(model, plan, lengths, taken)


def _holding(model: onnx.ModelProto, input_shapes: dict, taken: set) -> dict[str, bool]:
    """Each optional output's emptiness, read off an import where OptionalHasElement(y)
    stands in for the output y."""
    optional = [o.name for o in model.graph.output if value_kind(o.type).startswith("optional")]
    if not optional:
        return {}
    probe = _copy(model)
    flags = {name: fresh_name(f"{name}_holds", taken) for name in optional}
    probe.graph.node.extend(helper.make_node("OptionalHasElement", [name], [flag])
                            for name, flag in flags.items())  # fmt: skip
    _replace_outputs(probe.graph, {name: [_bool_value(flag)] for name, flag in flags.items()})
    names = [out.name for out in probe.graph.output]
    values = dict(zip(names, _returned(import_model(prepare(probe, input_shapes)), len(names)),
                      strict=True))  # fmt: skip
    return {name: bool(_constant(values[flag], name)) for name, flag in flags.items()}


def _unwrapped_optionals(model: onnx.ModelProto, holding: dict, taken: set) -> list:
    """Drop the empty optional outputs, unwrap the others; the output names per original one."""
    plan, replacements = [], {}
    for out in model.graph.output:
        if out.name not in holding:
            plan.append(out.name)
            continue
        replacements[out.name] = []
        if not holding[out.name]:
            plan.append(None)
            continue
        value = helper.make_value_info(fresh_name(f"{out.name}_value", taken),
                                       out.type.optional_type.elem_type)  # fmt: skip
        model.graph.node.append(helper.make_node("OptionalGetElement", [out.name], [value.name]))
        replacements[out.name] = [value]
        plan.append(value.name)
    _replace_outputs(model.graph, replacements)
    return plan


def _sequence_lengths(model: onnx.ModelProto, input_shapes: dict) -> dict[str, int]:
    """The length of each sequence output: the field count of its tuple in the import."""
    outputs = model.graph.output
    if not any(value_kind(out.type) == SEQUENCE for out in outputs):
        return {}
    returned = import_model(prepare(model, input_shapes))["main"].ret_ty
    types = [returned] if len(outputs) == 1 else list(returned.fields)
    return {out.name: len(ty.fields) for out, ty in zip(outputs, types, strict=True)
            if value_kind(out.type) == SEQUENCE}  # fmt: skip


def _split_sequences(model: onnx.ModelProto, plan: list, lengths: dict, taken: set) -> list:
    """Each sequence output as one tensor output per element."""
    replacements = {}
    for out in model.graph.output:
        if out.name in lengths:
            elem_type = out.type.sequence_type.elem_type.tensor_type.elem_type
            elements = [_element(model.graph, out.name, i, elem_type, taken)
                        for i in range(lengths[out.name])]  # fmt: skip
            replacements[out.name] = elements
    _replace_outputs(model.graph, replacements)
    return [[e.name for e in replacements[name]] if name in replacements else name
            for name in plan]  # fmt: skip


def _element(graph: onnx.GraphProto, sequence: str, index: int, elem_type: int, taken: set):
    position = fresh_name(f"{sequence}_position_{index}", taken)
    element = fresh_name(f"{sequence}_{index}", taken)
    graph.node.extend([
        helper.make_node("Constant", [], [position],
                         value=numpy_helper.from_array(_int64(index), position)),
        helper.make_node("SequenceAt", [sequence, position], [element]),
    ])  # fmt: skip
    return helper.make_tensor_value_info(element, elem_type, None)


def _replace_outputs(graph: onnx.GraphProto, replacements: dict) -> None:
    """Each output named in `replacements` becomes the outputs it maps to, in place."""
    outputs = []
    for out in graph.output:
        outputs.extend(replacements.get(out.name, [out]))
    del graph.output[:]
    graph.output.extend(outputs)


def _returned(mod, count: int) -> list:
    """What `main` returns, one expression per output, seen through its bindings."""
    body = mod["main"].body
    bound = {b.var: b.value for block in body.blocks for b in block.bindings}
    result = _through(body.body, bound)
    fields = [result] if count == 1 else result.fields
    return [_through(field, bound) for field in fields]


def _through(expr, bound: dict):
    while isinstance(expr, relax.Var) and expr in bound:
        expr = bound[expr]
    return expr


def _constant(expr, name: str):
    if not isinstance(expr, tvm.ir.GenericConst):
        raise CompileError(f"whether the optional output '{name}' holds a value is not known "
                           "when compiling")  # fmt: skip
    return expr.value.numpy()


def _bool_value(name: str) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, onnx.TensorProto.BOOL, [])


def _int64(value: int) -> np.ndarray:
    return np.array(value, dtype=np.int64)


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    copied = onnx.ModelProto()
    copied.CopyFrom(model)
    return copied
