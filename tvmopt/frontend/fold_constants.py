"""Fold constant and shape subgraphs of an ONNX graph before it reaches TVM's importer.

    Shape(x: static) -> Constant          Size(x: static) -> Constant
    op(all inputs constant) -> Constant   (evaluated with onnx's reference implementation)

Exporters (torch.onnx, both TorchScript and dynamo) compute shapes at run time with
Shape/Gather/Concat/ConstantOfShape/Expand/Where chains; TVM 0.27's importer fails on several of
them: ConstantOfShape with a 0-d shape, Reshape of a scalar taken from a shape (it becomes a
PrimValue), Constant nodes written with value_ints. Once input shapes are pinned those chains are
constant, so we evaluate them here and let shape inference see the results.

Runs after input shapes are pinned and inferred (Shape folding and the size guard read the
inferred value_info) and before the Relax import; repeats until nothing more folds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference
from onnx.reference import ReferenceEvaluator

from .signature import static_shapes
from .support import nodes_within

# A folded tensor may exceed its inputs' total size up to this many bytes: generators such as
# ConstantOfShape or Expand would otherwise bake arbitrarily large tensors into the artifact.
GROWTH_LIMIT_BYTES = 16 << 20
MAX_ROUNDS = 8
NOT_FOLDABLE = {
    "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike",
    "Multinomial", "Bernoulli", "If", "Loop", "Scan",
}  # fmt: skip


def fold_constants(model: onnx.ModelProto) -> onnx.ModelProto:
    """Fold until a fixed point; each round re-runs shape inference so new shapes become static."""
    for _ in range(MAX_ROUNDS):
        if not _fold_round(model):
            break
        model = shape_inference.infer_shapes(model, data_prop=True)
    _remove_dead_code(model.graph)
    return model


def _fold_round(model: onnx.ModelProto) -> bool:
    graph, opset = model.graph, _opsets(model)
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    facts = _StaticFacts.of(graph)
    graph_outputs = {out.name for out in graph.output}
    kept, folded, changed = [], {}, False
    for node in graph.node:
        branch = _taken_branch(node, constants)
        if branch is not None:  # an If on a constant condition: the branch taken, inlined
            kept.extend(branch.node)
            kept.extend(_renamed_outputs(branch, node.output))
            graph.initializer.extend(branch.initializer)
            changed = True
            continue
        is_output = bool(graph_outputs.intersection(node.output))
        values = (
            None
            if is_output and node.op_type == "Constant"
            else _evaluate(node, constants, facts, opset)
        )
        if values is None:
            kept.append(node)
            continue
        constants.update(values)
        changed = True
        if is_output:  # a graph output must stay a node's output: it becomes a Constant node
            kept.extend(_constant_node(name, array) for name, array in values.items())
        else:
            folded.update(values)
    if not changed:
        return False
    del graph.node[:]
    graph.node.extend(kept)
    graph.initializer.extend(numpy_helper.from_array(v, name) for name, v in folded.items())
    return True


def _taken_branch(node: onnx.NodeProto, constants: dict) -> onnx.GraphProto | None:
    if node.op_type != "If" or node.domain not in ("", "ai.onnx"):
        return None
    condition = constants.get(node.input[0])
    if condition is None or condition.size != 1:
        return None
    name = "then_branch" if bool(condition.reshape(())) else "else_branch"
    return next(helper.get_attribute_value(a) for a in node.attribute if a.name == name)


def _renamed_outputs(branch: onnx.GraphProto, names) -> list[onnx.NodeProto]:
    """Identity nodes giving the branch's outputs the If's output names (ONNX forbids a
    subgraph to shadow an outer name, so the branch's own names cannot collide)."""
    return [helper.make_node("Identity", [value.name], [name])
            for value, name in zip(branch.output, names, strict=True) if name]  # fmt: skip


def _constant_node(name: str, array: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(array, name))


def _evaluate(node, constants, facts: _StaticFacts, opset) -> dict | None:
    if node.op_type in ("Shape", "Size") and node.domain in ("", "ai.onnx"):
        return _fold_shape_query(node, facts.shapes)
    if not _is_foldable(node, constants):
        return None
    feeds = {name: constants[name] for name in node.input if name}
    fed = sum(v.nbytes for v in feeds.values())
    # checked before evaluating too: ConstantOfShape([100000, 100000]) must never be allocated
    if facts.output_bytes(node) - fed > GROWTH_LIMIT_BYTES:
        return None
    try:
        results = ReferenceEvaluator(node, opsets=opset).run(None, feeds)
    except Exception:  # noqa: BLE001 - an op the reference cannot run is simply left to TVM
        return None
    if not all(isinstance(r, np.ndarray) for r in results):
        return None
    if sum(r.nbytes for r in results) - fed > GROWTH_LIMIT_BYTES:
        return None
    return {name: np.asarray(r) for name, r in zip(node.output, results, strict=False) if name}


def _is_foldable(node: onnx.NodeProto, constants: dict) -> bool:
    if node.domain not in ("", "ai.onnx") or node.op_type in NOT_FOLDABLE:
        return False
    graph_types = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
    if any(attr.type in graph_types for attr in node.attribute):
        return False
    return all(name in constants for name in node.input if name)


def _fold_shape_query(node: onnx.NodeProto, shapes: dict) -> dict | None:
    shape = shapes.get(node.input[0])
    if shape is None:
        return None
    if node.op_type == "Size":
        return {node.output[0]: np.array(int(np.prod(shape)), dtype=np.int64)}
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    start, end = attrs.get("start", 0), attrs.get("end", len(shape))
    return {node.output[0]: np.array(shape[start:end], dtype=np.int64)}


@dataclass(frozen=True)
class _StaticFacts:
    """What shape inference proved: each fully static value's dims and element type."""

    shapes: dict[str, list[int]]
    elem_types: dict[str, int]

    @classmethod
    def of(cls, graph: onnx.GraphProto) -> _StaticFacts:
        values = [*graph.input, *graph.value_info, *graph.output]
        elem_types = {value.name: value.type.tensor_type.elem_type for value in values}
        elem_types.update((init.name, init.data_type) for init in graph.initializer)
        return cls(static_shapes(graph), elem_types)

    def output_bytes(self, node: onnx.NodeProto) -> int:
        """The bytes `node` would produce; 0 for outputs whose size is not known statically."""
        return sum(self._nbytes(name) for name in node.output if name)

    def _nbytes(self, name: str) -> int:
        if name not in self.shapes or not self.elem_types.get(name):
            return 0
        itemsize = np.dtype(helper.tensor_dtype_to_np_dtype(self.elem_types[name])).itemsize
        return int(np.prod(self.shapes[name], dtype=np.int64)) * itemsize


def _opsets(model: onnx.ModelProto) -> dict[str, int]:
    return {o.domain or "": o.version for o in model.opset_import}


def _remove_dead_code(graph: onnx.GraphProto) -> None:
    """Drop nodes and initializers that no graph output depends on."""
    live = {out.name for out in graph.output}
    kept = []
    for node in reversed(graph.node):
        if live.intersection(node.output):
            kept.append(node)
            live |= _names_read_by(node)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    unused = [init for init in graph.initializer if init.name not in live]
    for init in unused:
        graph.initializer.remove(init)
    dead_inputs = {init.name for init in unused}
    for value in [v for v in graph.input if v.name in dead_inputs]:
        graph.input.remove(value)


def _names_read_by(node: onnx.NodeProto) -> set[str]:
    """A node's inputs, plus the outer values its subgraphs (If/Loop bodies) read implicitly."""
    return {name for inner in nodes_within(node) for name in inner.input if name}
