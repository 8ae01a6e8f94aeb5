"""Node inputs whose value TVM's ONNX importer needs when it compiles: a Reshape's shape, a
reduction's axes, Resize's scales and sizes, TopK's k... onnx's node tests feed them as graph
inputs. The ONNX backend compiles such inputs in as constants, one compile per distinct value
(as it compiles once per input shape): `constant_inputs` names them, `with_constants` binds them.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

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
    "Dropout": (1, 2),  # ratio, training_mode: whether it drops at all
}  # fmt: skip


def constant_inputs(model: onnx.ModelProto) -> set[str]:
    """The graph inputs that some node reads where the importer needs a value."""
    initializers = {tensor.name for tensor in model.graph.initializer}
    inputs = {value.name for value in model.graph.input} - initializers
    slots = {name for node in model.graph.node
             for index in CONSTANT_SLOTS.get(node.op_type, ())
             if index < len(node.input) and (name := node.input[index])}  # fmt: skip
    return inputs & slots


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
