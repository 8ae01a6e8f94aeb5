"""Node inputs whose value TVM's ONNX importer needs when it compiles: a Reshape's shape, a
reduction's axes, Resize's scales and sizes, TopK's k... onnx's node tests feed them as graph
inputs. The ONNX backend compiles such inputs in as constants, one compile per distinct value
(as it compiles once per input shape): `constant_inputs` names them, `with_constants` binds them.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from .support import nodes_within

REDUCTIONS = ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
              "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare")  # fmt: skip
# op type -> the positions of its inputs the importer reads as values
CONSTANT_SLOTS: dict[str, tuple[int, ...]] = {
    **dict.fromkeys(REDUCTIONS, (1,)),  # axes
    "Reshape": (1,), "Expand": (1,), "Tile": (1,), "ConstantOfShape": (0,), "Squeeze": (1,),
    "Unsqueeze": (1,), "Slice": (1, 2, 3, 4), "Split": (1,), "Pad": (1, 2, 3),
    "Resize": (1, 2, 3), "Upsample": (1,), "CenterCropPad": (1,), "CumSum": (1,), "TopK": (1,),
    "OneHot": (1,), "AffineGrid": (1,), "MaxUnpool": (2,), "Range": (0, 1, 2), "Trilu": (1,),
    "CumProd": (1,), "RNN": (4,), "GRU": (4,), "LSTM": (4,),  # sequence_lens
    "HannWindow": (0,), "HammingWindow": (0,), "BlackmanWindow": (0,),  # size
    "SequenceAt": (1,), "SequenceErase": (1,), "SequenceInsert": (2,),  # positions
    "SplitToSequence": (1,),  # split
    "Loop": (0, 1),  # trip count and condition: a Loop unrolls only where both are constant
    "Col2Im": (1, 2),  # image_shape, block_shape
    "NonMaxSuppression": (2, 3, 4),  # max_output_boxes_per_class, iou and score thresholds
    "Dropout": (1, 2),  # ratio, training_mode: whether it drops at all
}  # fmt: skip
SHAPE_READERS = ("Shape", "Size")  # read their input's shape, never its values


def constant_inputs(model: onnx.ModelProto) -> set[str]:
    """The graph inputs whose values reach, through any chain of nodes, a slot where the importer
    needs a value: CenterCropPad expanded into its function computes a Pad's pads from its
    `shape` input with Max/Sub/Div/Concat."""
    initializers = {tensor.name for tensor in model.graph.initializer}
    inputs = {value.name for value in model.graph.input} - initializers
    return inputs & _values_needed(model.graph)


def _values_needed(graph: onnx.GraphProto) -> set[str]:
    """Every value some constant slot's value depends on, walking producers backwards; a node
    that reads only its input's shape (Shape, Size) does not need that input's value."""
    producers = {output: node for node in graph.node for output in node.output}
    pending = [name for node in graph.node
               for index in CONSTANT_SLOTS.get(node.op_type, ())
               if index < len(node.input) and (name := node.input[index])]  # fmt: skip
    needed: set[str] = set()
    while pending:
        name = pending.pop()
        if name in needed:
            continue
        needed.add(name)
        node = producers.get(name)
        if node is not None and node.op_type not in SHAPE_READERS:
            # with the outer values its subgraphs read (an If's branches)
            pending.extend(value for inner in nodes_within(node) for value in inner.input if value)
    return needed


def with_constants(model: onnx.ModelProto, values: dict[str, np.ndarray]) -> onnx.ModelProto:
    """A copy of `model` whose graph inputs in `values` are initializers holding those values."""
    bound = onnx.ModelProto()
    bound.CopyFrom(model)
    kept = [value for value in bound.graph.input if value.name not in values]
    del bound.graph.input[:]
    bound.graph.input.extend(kept)
    bound.graph.initializer.extend(
        numpy_helper.from_array(np.asarray(array), name) for name, array in values.items()
    )
    return bound
