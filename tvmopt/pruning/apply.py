"""Zero the chosen weights of a copy of the model: dense tensors of the same dtype, with zeros
where the masks say (a sparse kernel later finds them; ONNX Runtime runs the model as is)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from .magnitude import keep_masks, unit_scores
from .report import LayerPrune, zero_share
from .select import Candidate
from .spec import NM, Block, PruneSpec


def prune_weights(
    model: onnx.ModelProto, chosen: list[Candidate], spec: PruneSpec
) -> tuple[onnx.ModelProto, tuple[LayerPrune, ...]]:
    """A pruned copy of `model` and what happened to each chosen weight."""
    pruned = onnx.ModelProto()
    pruned.CopyFrom(model)
    tensors = {tensor.name: tensor for tensor in pruned.graph.initializer}
    dense = [numpy_helper.to_array(tensors[c.name]) for c in chosen]
    seen = [c.view.to_kn(weight) for c, weight in zip(chosen, dense, strict=True)]
    layers = []
    for candidate, weight, kn, keep in zip(chosen, dense, seen, keep_masks(spec, seen),
                                           strict=True):  # fmt: skip
        kept = np.where(keep, kn, np.zeros((), kn.dtype))
        after = candidate.view.from_kn(kept).astype(weight.dtype)
        tensors[candidate.name].CopyFrom(numpy_helper.from_array(after, candidate.name))
        layers.append(_layer(candidate, weight, after, _structure(spec, kept)))
    onnx.checker.check_model(pruned)
    return pruned, tuple(layers)


def _layer(candidate: Candidate, before: np.ndarray, after: np.ndarray, structure: str):
    view = candidate.view
    return LayerPrune(candidate.name, candidate.nodes, view.op, view.shape, view.kn_shape,
                      zero_share(before), zero_share(after), structure)  # fmt: skip


def _structure(spec: PruneSpec, kept: np.ndarray) -> str:
    """What the zeros form, counted on the pruned weight."""
    pattern = spec.pattern
    if isinstance(pattern, Block):
        blocks = unit_scores(kept, pattern, "l1")
        zero = int(np.count_nonzero(blocks == 0))
        return f"{pattern.rows}x{pattern.cols} blocks: {zero}/{blocks.size} zero"
    if isinstance(pattern, NM):
        return f"{pattern.describe()} along K"
    return "unstructured"
