"""Which weights to prune: initializers a MatMul or Gemm reads as B, or a Conv as W.

Biases, norms' scales and embedding tables (Gather's data) are read through other inputs and so
are never candidates; a weight that is also a Gather table (a tied embedding) is left alone
unless an include pattern names it. Patterns are fnmatch globs over the weight's name and the
names of the nodes that read it; one that matches no candidate is an error (a typo).
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

import onnx

from ..errors import InputError
from .views import WeightView

WEIGHT_INPUT = {"MatMul": 1, "Gemm": 1, "Conv": 1}  # op -> the input that holds its weight
MIN_RANK = {"MatMul": 2, "Gemm": 2, "Conv": 3}
FLOATS = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE}
TABLE_READERS = ("Gather", "GatherElements", "GatherND")


@dataclass(frozen=True)
class Candidate:
    """A prunable weight: its initializer's name, the nodes that read it, how the first reads it."""

    name: str
    nodes: tuple[str, ...]
    view: WeightView
    tied: bool = False  # also an embedding table

    def matches(self, pattern: str) -> bool:
        return any(fnmatchcase(name, pattern) for name in (self.name, *self.nodes))


def candidates(graph: onnx.GraphProto) -> list[Candidate]:
    """Every prunable weight of the main graph, in the order nodes first read them."""
    weights = {init.name: init for init in graph.initializer}
    found: dict[str, Candidate] = {}
    for index, node in enumerate(graph.node):
        tensor = _weight_of(node, weights)
        if tensor is None:
            continue
        node_name = node.name or f"{node.op_type}_{index}"
        if tensor.name in found:
            seen = found[tensor.name]
            found[tensor.name] = Candidate(seen.name, (*seen.nodes, node_name), seen.view)
        else:
            found[tensor.name] = Candidate(tensor.name, (node_name,), _view(node, tensor))
    tables = {node.input[0] for node in graph.node if node.op_type in TABLE_READERS}
    return [Candidate(c.name, c.nodes, c.view, c.name in tables) for c in found.values()]


def _weight_of(node: onnx.NodeProto, weights: dict) -> onnx.TensorProto | None:
    slot = WEIGHT_INPUT.get(node.op_type if node.domain in ("", "ai.onnx") else "")
    if slot is None or len(node.input) <= slot or node.input[slot] not in weights:
        return None
    tensor = weights[node.input[slot]]
    if tensor.data_type not in FLOATS or len(tensor.dims) < MIN_RANK[node.op_type]:
        return None
    return tensor


def _view(node: onnx.NodeProto, tensor: onnx.TensorProto) -> WeightView:
    trans_b = any(a.name == "transB" and a.i for a in node.attribute)
    return WeightView(node.op_type, tuple(tensor.dims), trans_b)


def select(found: list[Candidate], include=(), exclude=()) -> list[Candidate]:
    """The candidates to prune: those `include` names (all but tied embeddings when it is
    empty), less those `exclude` names."""
    if not found:
        raise InputError("nothing to prune: the model has no float weight that a MatMul or Gemm "
                         "reads as B or a Conv as W")  # fmt: skip
    for kind, patterns in (("include", include), ("exclude", exclude)):
        _check_patterns(found, kind, patterns)
    chosen = [c for c in found if _included(c, include)]
    chosen = [c for c in chosen if not any(c.matches(p) for p in exclude)]
    if not chosen:
        raise InputError(f"nothing left to prune: include/exclude patterns leave none of the "
                         f"{len(found)} prunable weights")  # fmt: skip
    return chosen


def _included(candidate: Candidate, include) -> bool:
    if include:
        return any(candidate.matches(p) for p in include)
    return not candidate.tied


def _check_patterns(found: list[Candidate], kind: str, patterns) -> None:
    for pattern in patterns:
        if not any(c.matches(pattern) for c in found):
            names = ", ".join(c.name for c in found[:8]) + (", ..." if len(found) > 8 else "")
            raise InputError(f"{kind} pattern {pattern!r} matches no prunable weight or its "
                             f"node; the prunable weights: {names}")  # fmt: skip
