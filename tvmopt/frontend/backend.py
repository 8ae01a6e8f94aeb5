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
from ..errors import InputError, TargetError, UnsupportedOpError
from .constant_slots import constant_inputs, with_constants
from .onnx import load_model
from .signature import graph_inputs


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
        specs = graph_inputs(model.graph)
        self._input_names = [spec.name for spec in specs]
        # shapes the model fixes are not given again: an empty input ONNX declares (CastLike's
        # `like`) compiles as declared, where a zero-size --input-shape is refused
        self._static = {spec.name: tuple(spec.shape) for spec in specs if spec.is_static}
        self._output_names = [value.name for value in model.graph.output]
        self._constants = constant_inputs(model)  # inputs compiled in as constants
        self._compiled = {}

    def run(self, inputs, **kwargs) -> tuple[np.ndarray, ...]:
        """Run once; `inputs` lists arrays in graph input order (or maps names to arrays).

        Returns
        -------
        tuple of numpy.ndarray
            The graph outputs, in graph output order.
        """
        arrays = self._by_name(inputs)
        constants = {name: arrays.pop(name) for name in self._constants if name in arrays}
        results = self._compiled_for(arrays, constants).run(arrays)
        return tuple(results[name] for name in self._output_names)

    def _by_name(self, inputs) -> dict[str, np.ndarray]:
        if not isinstance(inputs, Mapping):
            values = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
            if len(values) != len(self._input_names):
                raise InputError(f"expected {len(self._input_names)} inputs, got {len(values)}")
            inputs = dict(zip(self._input_names, values, strict=True))
        return {name: np.asarray(value) for name, value in inputs.items()}

    def _compiled_for(self, arrays: dict[str, np.ndarray], constants: dict[str, np.ndarray]):
        shapes = tuple((name, array.shape) for name, array in sorted(arrays.items()))
        values = tuple((name, a.dtype.str, a.shape, a.tobytes()) for name, a in constants.items())
        key = (shapes, tuple(sorted(values)))
        if key not in self._compiled:
            model = with_constants(self._model, constants) if constants else self._model
            given = {name: shape for name, shape in shapes if self._static.get(name) != shape}
            self._compiled[key] = compile_model(model, input_shapes=given, **self._options)
        return self._compiled[key]


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
        _check_tensors(model.graph)
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


def _check_tensors(graph: onnx.GraphProto) -> None:
    """Sequences, maps and optionals cannot cross tvmopt's numpy interface: say so up front."""
    for role, values in (("input", graph.input), ("output", graph.output)):
        for value in values:
            kind = value.type.WhichOneof("value")
            if kind != "tensor_type":
                message = f"graph {role} '{value.name}' is a {kind}; tvmopt handles tensors only"
                raise UnsupportedOpError(message)


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
