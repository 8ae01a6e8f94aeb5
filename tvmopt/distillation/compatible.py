"""The checks that run before any training: teacher and student take the same inputs and give
the same outputs, and the tensors chosen for hidden-state and attention losses exist."""

from __future__ import annotations

from collections.abc import Mapping

import onnx

from ..errors import InputError
from ..frontend.signature import TensorSpec, graph_inputs, graph_outputs


def check_signatures(teacher: onnx.ModelProto, student: onnx.ModelProto) -> None:
    """Same input names, dtypes and static dims; same output names, dtypes and ranks."""
    _same("input", graph_inputs(teacher.graph), graph_inputs(student.graph), shapes=True)
    _same("output", graph_outputs(teacher.graph), graph_outputs(student.graph), shapes=False)


def _same(kind: str, teacher: list[TensorSpec], student: list[TensorSpec], shapes: bool) -> None:
    names = ([s.name for s in teacher], [s.name for s in student])
    if names[0] != names[1]:
        raise InputError(f"teacher and student differ in their {kind}s: teacher "
                         f"{_list(teacher)}, student {_list(student)}")  # fmt: skip
    for t, s in zip(teacher, student, strict=True):
        if t.dtype != s.dtype or len(t.shape) != len(s.shape) or (shapes and t.shape != s.shape):
            raise InputError(f"teacher and student differ in {kind} '{t.name}': teacher "
                             f"{t.describe()}, student {s.describe()}")  # fmt: skip


def _list(specs: list[TensorSpec]) -> str:
    return "(" + ", ".join(spec.describe() for spec in specs) + ")"


def tensor_ops(model: onnx.ModelProto) -> dict[str, str]:
    """Every tensor the graph computes -> the op type that computes it."""
    return {out: node.op_type for node in model.graph.node for out in node.output}


def resolve_pairs(chosen, teacher: onnx.ModelProto, student: onnx.ModelProto, ops: tuple) -> dict:
    """`chosen` ("auto", a list of names or a student -> teacher mapping) as a checked mapping;
    "auto" pairs the outputs of `ops` that both graphs name alike."""
    made = (tensor_ops(teacher), tensor_ops(student))
    if isinstance(chosen, str) and chosen == "auto":
        return {n: n for n, op in made[1].items() if op in ops and made[0].get(n) in ops}
    if chosen is None:
        return {}
    pairs = dict(chosen) if isinstance(chosen, Mapping) else {n: n for n in chosen}
    for s, t in pairs.items():
        for name, role, tensors in ((s, "student", made[1]), (t, "teacher", made[0])):
            if name not in tensors:
                raise InputError(f"the {role} computes no tensor named '{name}'")
    return pairs


def parse_map(items) -> dict[str, str]:
    """CLI pairs: 'NAME' (alike in both) or 'STUDENT=TEACHER'."""
    pairs = {}
    for item in items:
        student, _, teacher = item.partition("=")
        pairs[student] = teacher or student
    return pairs
