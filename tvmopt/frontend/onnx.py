"""ONNX frontend: load, validate, normalize and import a model into Relax.

The pipeline, in order (`prepare`): parse -> check -> inline local functions -> upgrade old opsets
-> pin input shapes -> infer shapes -> expand ops TVM cannot import into their ONNX function bodies
-> fold reductions of empty tensors -> fold constant and shape subgraphs -> unroll Scan and static
Loop (then expand and fold the copied bodies) -> check op support.
`import_model` then hands the normalized graph to TVM's Relax importer.
"""

from __future__ import annotations

import math
import operator
import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import checker, inliner, shape_inference, version_converter

from ..errors import CompileError, ModelLoadError, ShapeError, first_line, last_line
from .blocked_dequantize import blocked_dequantize_as_nbits
from .converters import our_converters
from .expand_functions import expand_functions
from .expand_quantized_ops import expand_quantized_ops
from .fold_constants import fold_constants
from .fold_empty_reductions import fold_empty_reductions
from .identifiers import with_identifier_params
from .resize_upgrade import keep_resize_10_coordinates
from .signature import TensorSpec, graph_inputs, graph_outputs
from .support import check_supported, opset_of
from .unroll_loops import has_batched_scan, unroll_loops

# Models older than this are upgraded: TVM's converters are best exercised on recent opsets.
MIN_OPSET = 13


def load_model(source) -> onnx.ModelProto:
    """Read a model from a path, serialized bytes or a ModelProto, and run ONNX's checker."""
    if isinstance(source, onnx.ModelProto):
        model, origin = source, "the given ModelProto"
    elif isinstance(source, (bytes, bytearray)):
        model, origin = _parse(bytes(source), "the given bytes"), "the given bytes"
    elif isinstance(source, (str, os.PathLike)):
        model, origin = _read_file(Path(source)), str(source)
    else:
        kind = type(source).__name__
        raise ModelLoadError(f"expected a path, bytes or onnx.ModelProto, got {kind}")
    model = _fill_output_shapes(model)
    _check(model, origin)
    _check_opset(model, origin)
    return model


def _fill_output_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Graph outputs declared without a shape fail onnx's checker, yet ONNX Runtime runs such
    models: let shape inference write the shapes in first, where it can."""
    if all(out.type.tensor_type.HasField("shape") for out in model.graph.output):
        return model
    try:
        return shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - the checker then reports what is wrong
        return model


def _read_file(path: Path) -> onnx.ModelProto:
    if not path.is_file():
        raise ModelLoadError(f"model file not found: {path}")
    model = _parse(path.read_bytes(), str(path))
    if model.graph.initializer and any(_uses_external_data(t) for t in model.graph.initializer):
        _load_external_data(model, path)
    return model


def _load_external_data(model: onnx.ModelProto, path: Path) -> None:
    """Read the weights kept beside the model; a missing, unreadable or short data file is one
    line naming the file and the tensor."""
    for tensor in model.graph.initializer:
        if not _uses_external_data(tensor):
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        data_file = path.parent / location
        if not data_file.is_file():
            raise ModelLoadError(f"{path}: the weight '{tensor.name}' is stored in {data_file}, "
                                 "which does not exist (copy it beside the model)")  # fmt: skip
    try:
        onnx.external_data_helper.load_external_data_for_model(model, str(path.parent))
    except Exception as err:  # noqa: BLE001 - onnx raises ValidationError, OSError, ValueError
        reason = first_line(err, type(err).__name__)
        raise ModelLoadError(f"{path}: cannot read its external weights: {reason}") from None


def _uses_external_data(tensor: onnx.TensorProto) -> bool:
    return tensor.data_location == onnx.TensorProto.EXTERNAL


def _parse(data: bytes, origin: str) -> onnx.ModelProto:
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, RuntimeWarning, ValueError) as err:
        raise ModelLoadError(f"{origin} is not an ONNX model: cannot parse it ({err})") from None
    if not model.HasField("graph"):
        raise ModelLoadError(f"{origin} is not an ONNX model: it has no graph")
    return model


def _check(model: onnx.ModelProto, origin: str) -> None:
    try:
        checker.check_model(model)
    except (checker.ValidationError, onnx.onnx_cpp2py_export.checker.ValidationError) as err:
        raise ModelLoadError(f"{origin} fails ONNX's checker: {first_line(err)}") from None


def _check_opset(model: onnx.ModelProto, origin: str) -> None:
    """Refuse an opset newer than the installed onnx defines: its ops may mean something else."""
    newest = onnx.defs.onnx_opset_version()
    if opset_of(model) > newest:
        raise ModelLoadError(
            f"{origin} declares opset {opset_of(model)}; tvmopt knows opsets up to {newest} "
            f"(onnx {onnx.__version__}); export it for opset {newest} or older"
        )


def prepare(model: onnx.ModelProto, input_shapes: Mapping | None = None) -> onnx.ModelProto:
    """Normalize a checked model into the folded graph that TVM's importer handles: static,
    but for the inputs' named symbolic dims."""
    if model.functions:
        model = inliner.inline_local_functions(model)
    if has_batched_scan(model):  # onnx's Scan 8->9 adapter drops the batch dim, unsliced
        model = unroll_loops(pin_input_shapes(model, input_shapes or {}))
    model = upgrade_opset(model)
    model = pin_input_shapes(model, input_shapes or {})
    model = _expand_and_fold(model)
    unrolled = unroll_loops(model)
    if unrolled is not model:  # the copied bodies may hold ops to expand and values to fold
        model = _expand_and_fold(unrolled)
    check_supported(model.graph)
    return model


def _expand_and_fold(model: onnx.ModelProto) -> onnx.ModelProto:
    model = blocked_dequantize_as_nbits(model)  # before folding turns the weights to float32
    model = expand_functions(model)
    model = expand_quantized_ops(model)
    model = fold_empty_reductions(model)
    return fold_constants(model)


def upgrade_opset(model: onnx.ModelProto) -> onnx.ModelProto:
    """Upgrade models below MIN_OPSET; a model onnx cannot convert is kept as it is."""
    if opset_of(model) >= MIN_OPSET:
        return model
    try:
        upgraded = version_converter.convert_version(model, MIN_OPSET)
        if opset_of(model) < 11:
            upgraded = keep_resize_10_coordinates(upgraded)
        checker.check_model(upgraded)
    except Exception as err:  # noqa: BLE001 - the converter raises anything; the original still works
        message = f"keeping opset {opset_of(model)}: onnx could not upgrade it ({err})"
        warnings.warn(message, stacklevel=2)
        return model
    return upgraded


def pin_input_shapes(model: onnx.ModelProto, input_shapes: Mapping) -> onnx.ModelProto:
    """Write user-given shapes into the graph inputs; every dim must end up known: a size, or
    a name (a symbolic dim, such as an exporter's dynamic axes give: it stays symbolic)."""
    model = _copy(model)
    inputs = {v.name: v for v in model.graph.input}
    real_inputs = graph_inputs(model.graph)
    known = ", ".join(spec.describe() for spec in real_inputs)
    for name, shape in input_shapes.items():
        if name not in inputs:
            raise ShapeError(f"input_shapes names '{name}', which is not an input; inputs: {known}")
        _write_shape(inputs[name], _as_dims(name, shape))
    for spec in graph_inputs(model.graph):
        if "?" in spec.shape:
            raise ShapeError(
                f"input {spec.describe()} has unknown (unnamed) dims; give its shape, e.g. "
                f"--input-shape {spec.name}=1,3,224,224 or input_shapes={{'{spec.name}': (...)}}"
            )
        if spec.is_static:
            _check_size(spec)
    del model.graph.value_info[:]  # stale symbolic shapes would fight the pinned ones
    return infer_shapes(model)


def _check_size(spec: TensorSpec) -> None:
    """An input fits in this machine's memory."""
    size = math.prod(spec.shape) * np.dtype(spec.dtype).itemsize
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if size > memory:
        raise ShapeError(f"input {spec.describe()} would take {size / 2**30:,.0f} GiB, more than "
                         f"this machine's {memory / 2**30:,.0f} GiB of memory")  # fmt: skip


def _as_dims(name: str, shape) -> tuple[int, ...]:
    try:
        dims = tuple(operator.index(size) for size in shape)
    except TypeError:
        dims = None
    if dims is None or any(size < 0 for size in dims):
        raise ShapeError(f"input '{name}': dims must be non-negative ints, got {shape!r}")
    if 0 in dims:  # a model may declare an empty input; a shape given for compiling is a slip
        raise ShapeError(f"input '{name}': the given shape {dims} has a zero-size dim; give "
                         "at least 1 for each")  # fmt: skip
    return dims


def _write_shape(value: onnx.ValueInfoProto, shape: tuple) -> None:
    dims = value.type.tensor_type.shape.dim
    if dims and len(dims) != len(shape):
        raise ShapeError(
            f"input '{value.name}' has rank {len(dims)}, but the given shape {shape} has rank "
            f"{len(shape)}"
        )
    for axis, (dim, size) in enumerate(zip(dims, shape, strict=False)):
        if dim.HasField("dim_value") and dim.dim_value != size:
            raise ShapeError(
                f"input '{value.name}' has size {dim.dim_value} on axis {axis}, "
                f"but the given shape {shape} says {size}"
            )
    value.type.tensor_type.shape.ClearField("dim")
    for size in shape:
        value.type.tensor_type.shape.dim.add().dim_value = size


def infer_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    try:
        return shape_inference.infer_shapes(model, data_prop=True)
    except Exception as err:  # noqa: BLE001 - onnx raises several unrelated types here
        raise ShapeError(f"ONNX shape inference failed: {first_line(err)}") from None


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    copied = onnx.ModelProto()
    copied.CopyFrom(model)
    return copied


def import_model(model: onnx.ModelProto):
    """Import a prepared model into a Relax IRModule; `main` takes the graph inputs in order."""
    from tvm.relax.frontend.onnx import from_onnx

    from .import_errors import NodeImportError, naming_failed_nodes, native_stderr_silenced
    from .node_spans import spanning_nodes
    from .shape_outputs import shape_outputs_as_tensors

    failure = None
    with native_stderr_silenced():
        try:
            with (
                warnings.catch_warnings(),
                our_converters(),
                naming_failed_nodes(),
                spanning_nodes(),
            ):
                warnings.simplefilter("ignore")
                mod = from_onnx(model, opset=opset_of(model))
        except NodeImportError as err:
            failure = f"cannot import {err.describe(model)}"
        except Exception as err:  # noqa: BLE001 - TVM's importer raises any type
            failure = f"TVM's ONNX importer failed: {type(err).__name__}: {last_line(err)}"
    if failure is not None:
        raise CompileError(failure)
    mod["main"] = shape_outputs_as_tensors(with_identifier_params(mod["main"]))
    return mod


def signature(model: onnx.ModelProto) -> tuple[list[TensorSpec], list[TensorSpec]]:
    return graph_inputs(model.graph), graph_outputs(model.graph)
