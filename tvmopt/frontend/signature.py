"""Tensor signatures: the names, shapes and dtypes a compiled model takes and returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np
import onnx
from onnx import helper


@dataclass(frozen=True)
class TensorSpec:
    """One input or output: a name, a shape (ints; str for symbolic dims) and a numpy dtype name."""

    name: str
    shape: tuple
    dtype: str

    @cached_property  # read at every run (inputs.py): computed once
    def is_static(self) -> bool:
        return all(isinstance(d, int) and d >= 0 for d in self.shape)

    def describe(self) -> str:
        dims = ",".join(str(d) for d in self.shape)
        return f"{self.name} ({self.dtype}[{dims}])"

    def to_dict(self) -> dict:
        return {**asdict(self), "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, record: dict) -> TensorSpec:
        return cls(record["name"], tuple(record["shape"]), record["dtype"])


def onnx_dtype_name(elem_type: int) -> str:
    return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)).name


def spec_from_value_info(value: onnx.ValueInfoProto) -> TensorSpec:
    """Read a graph input or output; a dim with no value becomes its symbolic name or '?'."""
    tensor_type = value.type.tensor_type
    dims = tuple(
        d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
        for d in tensor_type.shape.dim
    )
    return TensorSpec(value.name, dims, onnx_dtype_name(tensor_type.elem_type))


def static_shapes(graph: onnx.GraphProto) -> dict[str, list[int]]:
    """Dims of every value whose shape is fully known (inputs, value_info, outputs, weights)."""
    shapes = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        tensor_type = value.type.tensor_type
        dims = tensor_type.shape.dim
        if tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = [d.dim_value for d in dims]
    shapes.update((init.name, list(init.dims)) for init in graph.initializer)
    return shapes


def graph_inputs(graph: onnx.GraphProto) -> list[TensorSpec]:
    """The graph's real inputs: old exporters also list every initializer as an input."""
    initializers = {init.name for init in graph.initializer}
    return [spec_from_value_info(v) for v in graph.input if v.name not in initializers]


def graph_outputs(graph: onnx.GraphProto) -> list[TensorSpec]:
    return [spec_from_value_info(v) for v in graph.output]
