"""Conv output channels, in dependency groups as Torch-Pruning's dependency graph defines them,
found on the ONNX graph.

A conv's output channels flow through BatchNormalization, per-channel constants, element-wise
activations, pooling and Pad/Resize/Slice of the maps; through depthwise convs (whose channels go
with them); into Concat at an offset; into the next conv's input channels, or a Gemm/MatMul's input
features after a Flatten of 1x1 maps. Convs whose outputs meet in an element-wise op (a residual
Add) must keep the same channels: they form one group. A channel is scored by the norm of its
filters, summed over the group's convs (depthwise ones included). Anything else that reads the
channels (a graph output, a Reshape, a grouped conv) freezes the groups it reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx

from . import importance
from .graph import Graph, attribute, set_attribute

PASS_THROUGH = {
    "Abs", "AveragePool", "Celu", "Clip", "Dropout", "Elu", "Exp", "Gelu", "GlobalAveragePool",
    "GlobalMaxPool", "HardSigmoid", "HardSwish", "Identity", "LeakyRelu", "MaxPool", "Mish",
    "Neg", "Relu", "Selu", "Sigmoid", "Softplus", "Softsign", "Sqrt", "Tanh",
}  # fmt: skip
ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "PRelu"}
FLATTENS = {"Flatten", "Squeeze", "Reshape"}
SPATIAL = {"Pad", "Resize", "Slice", "Upsample"}  # when they leave the channel axis alone


@dataclass
class Use:
    """A node input that carries channels: `axis` of input `index` is sliced by `layout`."""

    node: onnx.NodeProto
    index: int
    axis: int
    layout: tuple


@dataclass
class Group:
    root: int
    name: str
    size: int
    convs: list[onnx.NodeProto]  # whose output channels these are
    nodes: list[onnx.NodeProto] = field(default_factory=list)  # those and depthwise convs


class Channels:
    """The dependency groups of one graph, built by one walk in topological order."""

    def __init__(self, g: Graph):
        self.g = g
        self.convs, self.parent, self.frozen = [], [], set()
        self.layout: dict[str, tuple] = {}  # tensor -> source ids, one per channel segment
        self.uses: list[Use] = []
        self.depthwise: list[onnx.NodeProto] = []
        for node in g.nodes:
            self._visit(node)
        for name in g.outputs:
            self._freeze(self.layout.get(name))

    # ---- the walk ----

    def _visit(self, node: onnx.NodeProto) -> None:
        layouts = [self.layout.get(name) for name in node.input]
        if node.op_type == "Conv":
            self._conv(node, layouts[0])
        elif not any(layouts):
            return
        elif node.op_type in PASS_THROUGH and not any(layouts[1:]):
            self._pass(node, layouts[0])
        elif node.op_type == "BatchNormalization" and not any(layouts[1:]):
            self._pass(node, layouts[0])
            self.uses += [Use(node, i, 0, layouts[0]) for i in range(1, 5)]
        elif node.op_type in ELEMENTWISE:
            self._elementwise(node, layouts)
        elif node.op_type == "Concat" and all(layouts) and self._channel_axis(node):
            self.layout[node.output[0]] = sum(layouts, ())
        elif node.op_type in FLATTENS and self._flattens_channels(node):
            self._pass(node, layouts[0])
        elif node.op_type in SPATIAL and not any(layouts[1:]) and self._spatial_only(node):
            self._pass(node, layouts[0])
        elif node.op_type in ("Gemm", "MatMul") and self._dense(node, layouts[0]):
            self._freeze_all(layouts[1:])
        else:
            self._freeze_all(layouts)

    def _conv(self, node: onnx.NodeProto, layout) -> None:
        weight = self.g.const(node.input[1])
        group = attribute(node, "group", 1)
        bias = node.input[2] if len(node.input) > 2 else ""
        if weight is None or (bias and self.g.const(bias) is None):
            return self._freeze(layout)
        if group == 1:
            if layout and self._channels(layout) == weight.shape[1]:
                self.uses.append(Use(node, 1, 1, layout))
            else:
                self._freeze(layout)
            return self._new_source(node, weight.shape[0])
        if layout and group == weight.shape[0] == self._channels(layout) and weight.shape[1] == 1:
            self.depthwise.append(node)
            self.uses.append(Use(node, 1, 0, layout))
            if len(node.input) > 2 and node.input[2]:
                self.uses.append(Use(node, 2, 0, layout))
            return self._pass(node, layout)
        self._freeze(layout)

    def _new_source(self, node: onnx.NodeProto, size: int) -> None:
        self.convs.append((node, size))
        self.parent.append(len(self.parent))
        self.layout[node.output[0]] = (len(self.convs) - 1,)

    def _pass(self, node: onnx.NodeProto, layout) -> None:
        self.layout[node.output[0]] = layout

    def _elementwise(self, node: onnx.NodeProto, layouts) -> None:
        """Channels meeting channels are tied; a constant is sliced where it has a value per
        channel; an input of unknown broadcast freezes."""
        carried = [layout for layout in layouts if layout]
        first = carried[0]
        if any(not self._tie(first, other) for other in carried[1:]):
            return self._freeze_all(layouts)
        rank = self.g.shape(node.output[0])
        for index, layout in enumerate(layouts):
            if layout is None and not self._const_use(node, index, first, rank):
                return self._freeze_all(layouts)
        self._pass(node, first)

    def _const_use(self, node, index, layout, rank) -> bool:
        value = self.g.const(node.input[index])
        if value is None or rank is None:
            return False
        axis = value.ndim - (len(rank) - 1)  # the channel axis, broadcast from the right
        if axis < 0 or value.shape[axis] == 1:
            return True
        if value.shape[axis] != self._channels(layout):
            return False
        self.uses.append(Use(node, index, axis, layout))
        return True

    def _channel_axis(self, node: onnx.NodeProto) -> bool:
        rank = self.g.shape(node.output[0])
        axis = attribute(node, "axis")
        return rank is not None and axis is not None and axis % len(rank) == 1

    def _spatial_only(self, node: onnx.NodeProto) -> bool:
        """The channel axis comes out as it went in (a Resize to fixed sizes names the count)."""
        source, result = self.g.shape(node.input[0]), self.g.shape(node.output[0])
        sizes = node.op_type == "Resize" and len(node.input) > 3 and node.input[3]
        known = source is not None and result is not None and len(source) == len(result) > 2
        return known and not sizes and source[1] is not None and result[1] == source[1]

    def _flattens_channels(self, node: onnx.NodeProto) -> bool:
        """(N, C, 1, 1) -> (N, C): channels become features in the same order."""
        source, result = self.g.shape(node.input[0]), self.g.shape(node.output[0])
        if source is None or result is None or len(result) != 2 or len(source) < 2:
            return False
        return result[1] == source[1] and all(d == 1 for d in source[2:])

    def _dense(self, node: onnx.NodeProto, layout) -> bool:
        weight, rank = self.g.const(node.input[1]), self.g.shape(node.input[0])
        if not layout or weight is None or weight.ndim != 2 or attribute(node, "transA", 0):
            return False
        if rank is None or len(rank) != 2:  # a MatMul on maps would contract their width
            return False
        axis = 1 if node.op_type == "Gemm" and attribute(node, "transB", 0) else 0
        if weight.shape[axis] != self._channels(layout):
            return False
        self.uses.append(Use(node, 1, axis, layout))
        return True

    # ---- the groups ----

    def _root(self, source: int) -> int:
        while self.parent[source] != source:
            self.parent[source] = self.parent[self.parent[source]]
            source = self.parent[source]
        return source

    def _tie(self, layout, other) -> bool:
        sizes = [[self.convs[s][1] for s in lay] for lay in (layout, other)]
        if sizes[0] != sizes[1]:
            return False
        for a, b in zip(layout, other, strict=True):
            self.parent[self._root(a)] = self._root(b)
        return True

    def _channels(self, layout) -> int:
        return sum(self.convs[s][1] for s in layout)

    def _freeze(self, layout) -> None:
        self.frozen.update(layout or ())

    def _freeze_all(self, layouts) -> None:
        for layout in layouts:
            self._freeze(layout)

    def groups(self) -> dict[int, Group]:
        frozen = {self._root(s) for s in self.frozen}
        groups = {}
        for source, (conv, size) in enumerate(self.convs):
            root = self._root(source)
            if root not in frozen:
                group = groups.setdefault(root, Group(root, conv.name, size, []))
                group.convs.append(conv)
                group.nodes.append(conv)
        for node in self.depthwise:  # its filters are the group's own
            layout = next(use.layout for use in self.uses if use.node is node)
            for root in {self._root(s) for s in layout} & groups.keys():
                groups[root].nodes.append(node)
        return groups

    def prune(self, groups: dict[int, Group], fraction: float, criterion: str,
              round_to: int = 1) -> list[tuple]:  # fmt: skip
        """Prune `groups` (some of self.groups()); (group, before, after) for each."""
        kept = {root: self._kept(group, fraction, criterion, round_to)
                for root, group in groups.items()}  # fmt: skip
        for source, (conv, _) in enumerate(self.convs):
            indices = kept.get(self._root(source))
            if indices is not None:
                self.g.take(conv, 1, indices, axis=0)
                if len(conv.input) > 2 and conv.input[2]:
                    self.g.take(conv, 2, indices, axis=0)
        for use in self.uses:
            self.g.take(use.node, use.index, self._indices(use.layout, kept), axis=use.axis)
        for node in self.depthwise:
            set_attribute(node, "group", int(self.g.const(node.input[1]).shape[0]))
        return [(g, g.size, len(kept[root])) for root, g in groups.items()]

    def _kept(self, group: Group, fraction: float, criterion: str, round_to: int) -> np.ndarray:
        total = sum(importance.scores(criterion, [self.g.const(c.input[1])]) for c in group.convs)
        for use in self.uses:
            if use.node in self.depthwise and use.index == 1:
                total = total + self._depthwise_scores(use, group, criterion)
        return importance.keep(total, fraction, round_to)

    def _depthwise_scores(self, use: Use, group: Group, criterion: str) -> np.ndarray:
        scores = importance.scores(criterion, [self.g.const(use.node.input[1])])
        offset, total = 0, np.zeros(group.size)
        for source in use.layout:
            size = self.convs[source][1]
            if self._root(source) == group.root:
                total += scores[offset : offset + size]
            offset += size
        return total

    def _indices(self, layout, kept) -> np.ndarray:
        """The input indices `layout` keeps: each segment's kept channels at its offset."""
        pieces, offset = [], 0
        for source in layout:
            size = self.convs[source][1]
            pieces.append(offset + kept.get(self._root(source), np.arange(size)))
            offset += size
        return np.concatenate(pieces)
