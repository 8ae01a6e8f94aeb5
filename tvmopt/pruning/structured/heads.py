"""Attention heads: projections MatMul(x, W) [+ b] -> Reshape(..., heads, head_dim) (one each for
Q, K and V, or one fused QKV projection reshaped to (..., 3, heads, head_dim)) -> per-head
attention -> Transpose -> Reshape(..., heads * head_dim) -> MatMul(., W_o).

Between the head-splitting Reshapes and the head-merging one, every op must keep heads apart
(transposes, gathers and slices of the QKV axis, batched MatMuls, element-wise ops, Softmax), and
every tensor coming in from outside (the attention mask) must be the same for all heads
(size 1 on the heads axis), so that head h reads only its own columns of the projections and
only W_o's rows h * head_dim ... (h + 1) * head_dim read it. A head is scored by the norm of those
rows of W_o: a head whose rows are zero adds nothing to the output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx

from ...errors import InputError
from . import bias as biases
from . import importance, obs
from .activations import contribution, refit
from .graph import Graph

HEAD_WISE = {
    "Add", "Cast", "Div", "Dropout", "Gather", "Identity", "MatMul", "Mul", "Slice", "Softmax",
    "Split", "Sqrt", "Squeeze", "Sub", "Transpose", "Where",
}  # fmt: skip


@dataclass
class Split:
    reshape: onnx.NodeProto
    projection: onnx.NodeProto  # MatMul(x, W)
    bias: onnx.NodeProto | None  # Add(., b)
    parts: int  # 3 for a fused QKV projection
    heads: int
    head_dim: int


@dataclass
class Attention:
    splits: list[Split]
    merge: onnx.NodeProto  # Reshape(..., heads * head_dim)
    output: onnx.NodeProto  # MatMul(., W_o)
    region: list[onnx.NodeProto] = field(default_factory=list)

    @property
    def nodes(self):
        split_nodes = [n for s in self.splits for n in (s.reshape, s.projection, s.bias) if n]
        return split_nodes + self.region + [self.merge, self.output]


def find(g: Graph) -> list[Attention]:
    blocks = {}
    for node in g.nodes:
        split = _split(g, node) if node.op_type == "Reshape" else None
        traced = split and _trace(g, split)
        if traced:
            merge, output, region = traced
            block = blocks.setdefault(merge.name, Attention([], merge, output))
            block.splits.append(split)
            block.region += [n for n in region if n not in block.region]
    return [block for block in blocks.values() if _complete(g, block)]


def activation_tensor(block: Attention) -> str:
    """The merged heads' context (the output projection's input) that "activation" measures."""
    return block.output.input[0]


def prune(g: Graph, block: Attention, fraction: float, criterion: str,
          activations: dict | None = None,
          reconstruct: bool = False) -> tuple[int, int]:  # fmt: skip
    heads, head_dim = block.splits[0].heads, block.splits[0].head_dim
    w_o = g.const(block.output.input[1])
    after = biases.find(g, block.output) if criterion == "obs" else None
    kept, weights, delta = _choose(block, w_o, fraction, criterion, activations, after)
    if delta is not None:
        biases.shift(g, after, delta)
    rows = (kept[:, None] * head_dim + np.arange(head_dim)).reshape(-1)
    for split in block.splits:
        columns = np.concatenate([part * heads * head_dim + rows for part in range(split.parts)])
        g.take(split.projection, 1, columns, axis=1)
        if split.bias is not None:
            g.take(split.bias, _const_index(g, split.bias), columns, axis=0)
        _rewrite_shape(g, split.reshape, -2, heads, len(kept))
    _rewrite_shape(g, block.merge, -1, heads * head_dim, len(kept) * head_dim)
    if reconstruct and weights is None:
        weights = refit(activations[activation_tensor(block)], w_o, rows)
    if weights is not None:
        g.set_input(block.output, 1, weights.astype(w_o.dtype))
    else:
        g.take(block.output, 1, rows, axis=0)
    return heads, len(kept)


def _choose(block: Attention, w_o: np.ndarray, fraction: float, criterion: str,
            activations: dict | None, after):  # fmt: skip
    """(kept heads, W_o's refit rows for them or None where they are to be sliced or refit,
    what to add to W_o's bias or None)."""
    heads, head_dim = block.splits[0].heads, block.splits[0].head_dim
    x = activations[activation_tensor(block)] if activations else None
    if criterion == "obs":  # chooses and refits at once
        return obs.choose(x, w_o, heads, importance.kept_count(heads, fraction), after)
    if criterion == "activation":
        unit_scores = contribution(x, w_o, heads)
    else:
        unit_scores = importance.scores(criterion, [w_o.reshape(heads, head_dim, -1)])
    return importance.keep(unit_scores, fraction), None, None


def _rewrite_shape(g: Graph, reshape: onnx.NodeProto, axis: int, old: int, new: int) -> None:
    """Entries of -1 (inferred) stay; a run-time entry must be `old` for the graph to be valid."""
    if g.vector(reshape.input[1])[axis] in (old, None) and not g.set_entry(reshape, 1, axis, new):
        raise InputError(f"heads: cannot rewrite the shape that {reshape.name} reshapes to")


def _const_index(g: Graph, node: onnx.NodeProto) -> int:
    return next(i for i, name in enumerate(node.input) if g.const(name) is not None)


def _split(g: Graph, reshape: onnx.NodeProto) -> Split | None:
    shape = g.vector(reshape.input[1])
    projection, bias = _projection(g, reshape.input[0])
    if shape is None or projection is None or len(shape) < 3 or None in shape[-2:]:
        return None
    layout = _layout(shape, g.const(projection.input[1]).shape[1])
    return Split(reshape, projection, bias, *layout) if layout else None


def _layout(shape: list, width: int) -> tuple[int, int, int] | None:
    """(parts, heads, head_dim) that split `width` as `shape` ends: (..., 3, heads, head_dim)
    for a fused QKV projection, (..., heads, head_dim) for one of Q, K, V; a -1 is inferred."""
    for parts in (3, 1):
        if parts == 3 and (len(shape) < 4 or shape[-3] != 3):
            continue
        heads, head_dim = shape[-2], shape[-1]
        heads = width // (parts * head_dim) if heads == -1 and head_dim > 0 else heads
        head_dim = width // (parts * heads) if head_dim == -1 and heads > 0 else head_dim
        if heads >= 2 and head_dim >= 1 and parts * heads * head_dim == width:
            return parts, heads, head_dim
    return None


def _projection(g: Graph, tensor: str):
    """(MatMul, Add or None) producing `tensor` from a constant 2-D weight and bias, read only by
    the Reshape; a scaling by a scalar on the way (q * head_dim ** -0.5) is passed."""
    node = g.producer.get(tensor)
    if node is None or not _read_once(g, tensor):
        return None, None
    if node.op_type in ("Mul", "Div") and g.is_scalar_const(node.input[1]):
        return _projection(g, node.input[0])
    bias = None
    if node.op_type == "Add":
        matmul = next((g.producer.get(n) for n in node.input if g.const(n) is None), None)
        bias, node = node, matmul
        if node is None or not _read_once(g, node.output[0]):
            return None, None
    weight = g.const(node.input[1]) if node.op_type == "MatMul" else None
    if weight is None or weight.ndim != 2:
        return None, None
    if bias is not None and g.const(bias.input[_const_index(g, bias)]).shape != weight.shape[1:]:
        return None, None
    return node, bias


def _read_once(g: Graph, tensor: str) -> bool:
    """One node reads `tensor`, not counting Shape ops (their run-time sizes follow pruning)."""
    readers = [node for node in g.consumers[tensor] if node.op_type != "Shape"]
    return len(readers) == 1 and tensor not in g.outputs


def _trace(g: Graph, split: Split):
    """(merge Reshape, output MatMul, region nodes) reached from the split through head-wise ops,
    or None when some path leaves attention another way."""
    region, merges, pending = [], set(), [split.reshape.output[0]]
    while pending:
        tensor = pending.pop()
        for node in g.consumers[tensor] if tensor not in g.outputs else [None]:
            if node is not None and node.op_type == "Shape":
                continue  # run-time sizes follow the pruned tensor by themselves
            if node is not None and node.op_type == "Reshape" and node.input[0] == tensor:
                merges.add(node.name)
                merge = node
            elif node is None or node.op_type not in HEAD_WISE or _reads_as_index(node, tensor):
                return None
            elif node not in region:
                region.append(node)
                pending.extend(node.output)
    if len(merges) != 1:
        return None
    output = _output_projection(g, merge, split.heads * split.head_dim)
    return (merge, output, region) if output is not None else None


def _reads_as_index(node: onnx.NodeProto, tensor: str) -> bool:
    return node.op_type in ("Gather", "Slice", "Split", "Squeeze") and node.input[0] != tensor


def _output_projection(g: Graph, merge: onnx.NodeProto, width: int) -> onnx.NodeProto | None:
    shape, matmul = g.vector(merge.input[1]), g.only_consumer(merge.output[0])
    if shape is None or shape[-1] not in (width, -1, None) or matmul is None:
        return None
    weight = g.const(matmul.input[1]) if matmul.op_type == "MatMul" else None
    ok = weight is not None and weight.ndim == 2 and weight.shape[0] == width
    return matmul if ok and matmul.input[0] == merge.output[0] else None


def _complete(g: Graph, block: Attention) -> bool:
    """Q, K and V all found with one head layout, and the mask shared by every head."""
    layouts = {(s.heads, s.head_dim) for s in block.splits}
    if sum(s.parts for s in block.splits) != 3 or len(layouts) != 1:
        return False
    inside = {out for node in block.region for out in node.output}
    inside |= {s.reshape.output[0] for s in block.splits}
    outside = {n for node in block.region for n in node.input if n and n not in inside}
    return all(_same_for_every_head(g, name) for name in outside)


def _same_for_every_head(g: Graph, name: str) -> bool:
    value = g.const(name)
    if value is not None and (value.size == 1 or value.ndim <= 1):
        return True  # a scalar, or gather/slice indices
    shape = g.shape(name) if value is None else value.shape
    return shape is not None and (len(shape) < 3 or shape[-3] == 1)
