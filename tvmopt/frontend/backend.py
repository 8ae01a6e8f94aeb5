"""An ONNX backend (`onnx.backend.base.Backend`) that runs models through `tvmopt.compile`.

It exists so that onnx's own conformance suite (`onnx.backend.test.BackendTest`) can drive tvmopt:
`tests/test_conformance.py` runs it. Node-test models often leave input shapes symbolic, so a
prepared model compiles on its first `run`, pinning the shapes of the arrays it is given, and keeps
one compiled model per input-shape signature. An input the importer needs the value of (a
Reshape's shape, a reduction's axes: constant_slots.py) is compiled in as a constant, one compile
per distinct value. Unlike the rest of `frontend`, it sits on top of the Python API: it is a
client of `tvmopt.compile`, not a step inside it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import helper, shape_inference
from onnx.backend.base import Backend, BackendRep

from ..api import compile as compile_model
from ..errors import InputError, TargetError
from .backend_sequence_outputs import tensor_outputs
from .backend_sequences import (
    SEQUENCE,
    TENSOR,
    TensorBoundary,
    check_boundary,
    structure,
    tensor_inputs,
    value_kind,
)
from .constant_slots import constant_inputs, with_constants
from .onnx import load_model
from .signature import spec_from_value_info


class TvmoptRep(BackendRep):
    """A model ready to run on the CPU; compiles lazily, once per distinct set of input shapes.

    Parameters
    ----------
    model : onnx.ModelProto
        A model that passed ONNX's checker.
    target : str or dict, optional
        Passed to `tvmopt.compile`; defaults to the host CPU.
    opt_level : int, optional
        Passed to `tvmopt.compile`; defaults to tvmopt's default level.
    """

    def __init__(self, model: onnx.ModelProto, target=None, opt_level=None):
        self._model = model
        options = {"target": target, "opt_level": opt_level}
        self._options = {name: value for name, value in options.items() if value is not None}
        initializers = {tensor.name for tensor in model.graph.initializer}
        self._input_names = [v.name for v in model.graph.input if v.name not in initializers]
        self._kinds = {value.name: value_kind(value.type) for value in model.graph.input}
        specs = [spec_from_value_info(value) for value in model.graph.input
                 if value.name in self._input_names and self._kinds[value.name] == TENSOR]
        # shapes the model fixes are not given again: an empty input ONNX declares (CastLike's
        # `like`) compiles as declared, where a zero-size --input-shape is refused
        self._static = {spec.name: tuple(spec.shape) for spec in specs if spec.is_static}
        self._constants = constant_inputs(model)  # inputs compiled in as constants
        self._compiled = {}

    def run(self, inputs, **kwargs) -> tuple:
        """Run once; `inputs` lists values in graph input order (or maps names to values): arrays,
        lists of arrays for sequence inputs, None for an empty optional.

        Returns
        -------
        tuple
            The graph outputs, in graph output order: arrays, lists of arrays for sequences.
        """
        values = self._by_name(inputs)
        constants = {name: values.pop(name) for name in self._constants if name in values}
        compiled, boundary = self._compiled_for(values, constants)
        return boundary.results(compiled.run(boundary.arrays(values)))

    def _by_name(self, inputs) -> dict:
        if not isinstance(inputs, Mapping):
            values = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
            if len(values) != len(self._input_names):
                raise InputError(f"expected {len(self._input_names)} inputs, got {len(values)}")
            inputs = dict(zip(self._input_names, values, strict=True))
        return {name: _as_value(value, self._kinds.get(name)) for name, value in inputs.items()}

    def _compiled_for(self, values: dict, constants: dict[str, np.ndarray]):
        shapes = tuple((name, structure(value)) for name, value in sorted(values.items()))
        bound = ((name, a.dtype.str, a.shape, a.tobytes()) for name, a in constants.items())
        key = (shapes, tuple(sorted(bound)))
        if key not in self._compiled:
            self._compiled[key] = self._compile(values, constants)
        return self._compiled[key]

    def _compile(self, values: dict, constants: dict[str, np.ndarray]):
        """The compiled model for these input structures, and how values cross it."""
        model = with_constants(self._model, constants) if constants else self._model
        model, carried = tensor_inputs(model, values)
        arrays = {name: value for name, value in values.items() if name not in carried}
        given = {name: array.shape for name, array in arrays.items()
                 if self._static.get(name) != array.shape}  # fmt: skip
        # a zero-size array is real data here, not a slip: it is declared as the model's own
        empty = {name: shape for name, shape in given.items() if 0 in shape}
        model = with_input_shapes(model, empty) if empty else model
        given = {name: shape for name, shape in given.items() if name not in empty}
        model, outputs = tensor_outputs(model, given)
        compiled = compile_model(model, input_shapes=given, **self._options)
        return compiled, TensorBoundary(carried, outputs)


def _as_value(value, kind: str | None):
    """An input as an array, a sequence as a list of arrays; None (an empty optional) stays."""
    if value is None and kind is not None and kind.startswith("optional"):
        return None
    if kind in (SEQUENCE, f"optional {SEQUENCE}"):
        return [np.asarray(item) for item in value]
    return np.asarray(value)


class TvmoptBackend(Backend):
    """tvmopt as an ONNX backend: `prepare` a model, then `run` it on CPU arrays."""

    @classmethod
    def is_compatible(cls, model, device: str = "CPU", **kwargs) -> bool:
        return cls.supports_device(device)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device.split(":")[0] == "CPU"  # onnx's device strings: "CPU", "CUDA:1"

    @classmethod
    def prepare(cls, model, device="CPU", target=None, opt_level=None, **kwargs) -> TvmoptRep:
        """Check `model` and return a rep that compiles it on first run.

        `target` and `opt_level` go to `tvmopt.compile`. Other `kwargs` are accepted and ignored:
        onnx's runner passes per-test options (rtol, atol).
        """
        if not cls.supports_device(device):
            raise TargetError(f"tvmopt's ONNX backend runs on 'CPU' only, got device '{device}'")
        model = load_model(model)
        check_boundary(model.graph)
        return TvmoptRep(model, target, opt_level)

    @classmethod
    def run_model(cls, model, inputs, device: str = "CPU", **kwargs) -> tuple[np.ndarray, ...]:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node, inputs, device="CPU", outputs_info=None, **kwargs):
        """Run one node on `inputs` (listed in the node's input order, empty names skipped)."""
        super().run_node(node, inputs, device=device, outputs_info=outputs_info, **kwargs)
        model = node_model(node, inputs, outputs_info, kwargs.get("opset_version"))
        return cls.run_model(model, inputs, device)


def with_input_shapes(model: onnx.ModelProto, shapes: dict) -> onnx.ModelProto:
    """A copy of `model` whose inputs named in `shapes` declare those shapes."""
    pinned = onnx.ModelProto()
    pinned.CopyFrom(model)
    for value in pinned.graph.input:
        if value.name in shapes:
            dims = value.type.tensor_type.shape
            dims.ClearField("dim")
            for size in shapes[value.name]:
                dims.dim.add().dim_value = size
    return pinned


def node_model(node, inputs, outputs_info=None, opset_version=None) -> onnx.ModelProto:
    """A one-node model whose inputs have the shapes and dtypes of `inputs`.

    Output types come from `outputs_info` ((dtype, shape) pairs) or, without it, shape inference.
    """
    names = [name for name in node.input if name]
    arrays = inputs if isinstance(inputs, Mapping) else dict(zip(names, inputs, strict=True))
    graph_inputs_ = [_value_info(name, np.asarray(arrays[name])) for name in names]
    if outputs_info is None:
        outputs = [helper.make_empty_tensor_value_info(name) for name in node.output if name]
    else:
        # outputs_info may leave trailing optional outputs out
        pairs = zip(node.output, outputs_info, strict=False)
        outputs = [_typed_value_info(name, *info) for name, info in pairs]
    graph = helper.make_graph([node], f"{node.op_type}_node", graph_inputs_, outputs)
    opset = opset_version or onnx.defs.onnx_opset_version()
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return shape_inference.infer_shapes(model) if outputs_info is None else model


def _value_info(name: str, array: np.ndarray) -> onnx.ValueInfoProto:
    return _typed_value_info(name, array.dtype, array.shape)


def _typed_value_info(name: str, dtype, shape) -> onnx.ValueInfoProto:
    elem_type = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    return helper.make_tensor_value_info(name, elem_type, shape)


# The module-level functions onnx's runner looks for when given this module as the backend.
is_compatible = TvmoptBackend.is_compatible
prepare = TvmoptBackend.prepare
run_model = TvmoptBackend.run_model
run_node = TvmoptBackend.run_node
supports_device = TvmoptBackend.supports_device
