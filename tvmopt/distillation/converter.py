"""ONNX -> torch.nn.Module: the graph interpreted node by node in torch, so that its weights can
be trained and written back into the very same graph.

Float initializers that act as weights (MatMul/Gemm/Conv operands, biases, normalization scales,
embedding tables) become trainable nn.Parameters; everything else (shapes, scalars, BatchNorm
statistics, Constant nodes) is a frozen buffer. `write_back` copies the trained parameters into a
copy of the original ModelProto: the graph stays exactly as the user gave it.
"""

from __future__ import annotations

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper
from torch import nn

from ..errors import UnsupportedOpError
from .ops import OPS

FROZEN_INPUTS = {"BatchNormalization": (3, 4)}  # running mean and variance are statistics


class OnnxModule(nn.Module):
    """Runs an ONNX graph in torch; `forward(**inputs)` returns {name: tensor} for the graph
    outputs plus any intermediate values named in `capture`."""

    def __init__(self, model: onnx.ModelProto):
        super().__init__()
        check_supported(model)
        graph = model.graph
        self.input_names = [v.name for v in graph.input if v.name not in _names(graph.initializer)]
        self.output_names = [v.name for v in graph.output]
        self.nodes = [_Node(node) for node in graph.node]
        trainable = _trainable_names(graph)
        self.weights = nn.ParameterList()
        self.weight_names: list[str] = []
        self.constants: dict[str, torch.Tensor] = {}
        for init in graph.initializer:
            self._add_initializer(init, init.name in trainable)
        self.capture: tuple[str, ...] = ()
        self.hooks: dict[str, object] = {}  # op type -> fn(node, inputs) -> inputs (QAT)
        # name -> tensor that replaces the value downstream (layer-wise distillation feeds each
        # block the teacher's input); the captured value stays the student's own
        self.forced: dict[str, torch.Tensor] = {}

    def _add_initializer(self, init: onnx.TensorProto, trainable: bool) -> None:
        value = torch.from_numpy(numpy_helper.to_array(init).copy())
        if trainable:
            self.weights.append(nn.Parameter(value))
            self.weight_names.append(init.name)
        else:
            self.constants[init.name] = value

    def set_capture(self, names) -> None:
        self.capture = tuple(names)

    def parameters_by_name(self) -> dict[str, nn.Parameter]:
        return dict(zip(self.weight_names, self.weights, strict=True))

    def forward(self, **inputs) -> dict[str, torch.Tensor]:
        env = {**self.constants, **self.parameters_by_name(), **inputs}
        own = {}
        for node in self.nodes:
            args = [env[name] if name else None for name in node.inputs]
            hook = self.hooks.get(node.op_type)
            if hook is not None:
                args = hook(node, args)
            outputs = node.run(args)
            env.update(zip(node.outputs, outputs, strict=False))
            for name in node.outputs:
                if name in self.forced:
                    own[name], env[name] = env[name], self.forced[name]
        return {name: own.get(name, env[name]) for name in (*self.output_names, *self.capture)}


class _Node:
    """One ONNX node: its op as a torch function and its attributes read once."""

    def __init__(self, node: onnx.NodeProto):
        self.name, self.op_type = node.name, node.op_type
        self.inputs, self.outputs = list(node.input), list(node.output)
        self.attrs = {a.name: _attribute(a) for a in node.attribute}
        self.fn = _constant if node.op_type == "Constant" else OPS[node.op_type]

    def run(self, args) -> tuple:
        while args and args[-1] is None:
            args.pop()  # trailing optional inputs left out
        out = self.fn(self.attrs, *args)
        return out if isinstance(out, tuple) else (out,)


def _constant(attrs):
    if "value" in attrs:
        return attrs["value"]
    for key in ("value_float", "value_int"):
        if key in attrs:
            return torch.tensor(attrs[key])
    return torch.tensor(attrs.get("value_floats") or attrs["value_ints"])


def _attribute(attribute: onnx.AttributeProto):
    value = helper.get_attribute_value(attribute)
    if isinstance(value, onnx.TensorProto):
        return torch.from_numpy(numpy_helper.to_array(value).copy())
    if isinstance(value, bytes):
        return value.decode()
    return value


def check_supported(model: onnx.ModelProto) -> None:
    """One error listing every op the converter lacks, before anything is converted."""
    missing = sorted({n.op_type for n in model.graph.node if n.op_type not in {*OPS, "Constant"}})
    foreign = sorted({n.domain for n in model.graph.node if n.domain not in ("", "ai.onnx")})
    if missing or foreign:
        what = ", ".join(missing + [f"domain {d}" for d in foreign])
        raise UnsupportedOpError(f"distillation cannot run these ops in torch: {what}")


def _names(values) -> set[str]:
    return {value.name for value in values}


def _trainable_names(graph: onnx.GraphProto) -> set[str]:
    """Float initializers with more than one element, less those read as statistics."""
    frozen = {node.input[i] for node in graph.node
              for i in FROZEN_INPUTS.get(node.op_type, ()) if i < len(node.input)}  # fmt: skip
    return {init.name for init in graph.initializer
            if init.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16,
                                  onnx.TensorProto.DOUBLE)
            and int(np.prod(init.dims)) > 1 and init.name not in frozen}  # fmt: skip


def write_back(model: onnx.ModelProto, module: OnnxModule) -> onnx.ModelProto:
    """A copy of `model` whose trainable initializers hold `module`'s current parameters."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    weights = {name: p.detach().cpu().numpy() for name, p in module.parameters_by_name().items()}
    for init in out.graph.initializer:
        if init.name in weights:
            array = weights[init.name].astype(helper.tensor_dtype_to_np_dtype(init.data_type))
            init.CopyFrom(numpy_helper.from_array(array, init.name))
    return out
