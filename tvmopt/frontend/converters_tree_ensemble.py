"""TreeEnsemble (ai.onnx.ml 5) as masks of the paths to each leaf and one matmul.

    TreeEnsemble(X) -> float(stack(path_mask(leaf) for each leaf)) @ leaf_weights_by_target

The trees are attributes, so their shape is known at import: each leaf is reached exactly when
every comparison on its path goes its way, a 0/1 product per row; exactly one leaf per tree holds.
Summing each leaf's weight into its target is then a matmul with a [leaves, targets] matrix.
Comparisons follow the spec: NaN fails every one unless the node's missing value tracks true.
"""

from __future__ import annotations

import numpy as np
from onnx import numpy_helper
from tvm import relax
from tvm.relax.frontend.onnx.onnx_frontend import OnnxOpConverter

from .converter_values import scalar_like

op = relax.op



def _not_equal(value, split):
    # NaN != split holds, as in IEEE and the reference; TVM's not_equal is an ordered compare
    return op.logical_or(op.not_equal(value, split), op.isnan(value))


_COMPARISONS = [op.less_equal, op.less, op.greater_equal, op.greater, op.equal, _not_equal]
_MEMBER, _SUM, _AVERAGE = 6, 1, 0


def _values(attr, name, default=None):
    value = attr.get(name, default)
    if value is None or isinstance(value, (tuple, list)):
        return value
    return numpy_helper.to_array(value)


class TreeEnsemble(OnnxOpConverter):
    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        aggregate, post = attr.get("aggregate_function", _SUM), attr.get("post_transform", 0)
        if aggregate not in (_SUM, _AVERAGE) or post != 0:
            raise NotImplementedError(
                f"TreeEnsemble: aggregate_function {aggregate} (want 0 or 1) with "
                f"post_transform {post} (want 0) is not supported"
            )
        x = inputs[0]
        trees = _Trees(attr, bb, x)
        leaves = [(mask, leaf) for root in attr["tree_roots"] for mask, leaf in trees.paths(root)]
        masks = op.stack([mask for mask, _ in leaves], axis=1)
        weights = np.zeros((len(leaves), int(attr["n_targets"])), str(x.ty.dtype))
        for row, (_, leaf) in enumerate(leaves):
            weights[row, trees.leaf_targets[leaf]] = trees.leaf_weights[leaf]
        if aggregate == _AVERAGE:
            weights /= len(attr["tree_roots"])
        return op.matmul(masks, relax.const(weights, str(x.ty.dtype)))


class _Trees:
    """The node attributes, and the comparisons of one node as boolean row masks."""

    def __init__(self, attr, bb, x):
        self.attr, self.bb, self.x = attr, bb, x
        self.modes = _values(attr, "nodes_modes")
        self.splits = _values(attr, "nodes_splits")
        self.tracks = _values(attr, "nodes_missing_value_tracks_true")
        self.members = _member_sets(_values(attr, "membership_values"), self.modes)
        self.leaf_targets = attr["leaf_targetids"]
        self.leaf_weights = _values(attr, "leaf_weights")

    def paths(self, root):
        """(mask, leaf) for every leaf of the tree at `root`."""
        a = self.attr
        if (
            a["nodes_trueleafs"][root]
            and a["nodes_falseleafs"][root]
            and (a["nodes_truenodeids"][root] == a["nodes_falsenodeids"][root])
        ):
            everywhere = op.ones_like(self._feature(root))
            return [(everywhere, a["nodes_truenodeids"][root])]
        return list(self._paths(root, None))

    def _paths(self, node, above):
        goes_true = self.bb.normalize(op.astype(self._compare(node), str(self.x.ty.dtype)))
        # 1 - mask, not logical_not: TVM's simplifier rewrites not(a <= b) as a > b, false for NaN
        goes_false = scalar_like(goes_true, 1) - goes_true
        for branch, mask in (("true", goes_true), ("false", goes_false)):
            mask = mask if above is None else above * mask
            mask = self.bb.normalize(mask)
            child = self.attr[f"nodes_{branch}nodeids"][node]
            if self.attr[f"nodes_{branch}leafs"][node]:
                yield mask, child
            else:
                yield from self._paths(child, mask)

    def _feature(self, node):
        return op.take(self.x, relax.const(self.attr["nodes_featureids"][node], "int64"), axis=1)

    def _compare(self, node):
        value = self.bb.normalize(self._feature(node))
        if self.modes[node] == _MEMBER:
            hits = [op.equal(value, scalar_like(value, m)) for m in self.members[node]]
            result = hits[0] if hits else op.astype(op.zeros_like(value), "bool")
            for hit in hits[1:]:
                result = op.logical_or(result, hit)
        else:
            compare = _COMPARISONS[int(self.modes[node])]
            result = compare(value, scalar_like(value, float(self.splits[node])))
        if self.tracks is not None and self.tracks[node]:
            result = op.logical_or(result, op.isnan(value))
        return self.bb.normalize(result)


def _member_sets(values, modes):
    """Node index -> its set members: `values` lists each MEMBER node's set, NaN after each."""
    values = [] if values is None else [float(v) for v in values]
    ends = [i for i, v in enumerate(values) if np.isnan(v)]
    starts = [0] + [end + 1 for end in ends]
    member_nodes = [node for node, mode in enumerate(modes) if mode == _MEMBER]
    return {node: values[starts[i] : ends[i]] for i, node in enumerate(member_nodes)}


OPS = {"TreeEnsemble": TreeEnsemble}
