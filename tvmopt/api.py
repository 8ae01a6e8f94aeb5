"""The Python API: `compile` a model into a CompiledModel and `load` an exported one."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from . import __version__
from ._tvm import tvm
from .artifact import Metadata, read_metadata
from .autotune.database import open_database
from .backends import cuda, llvm, resolve_target, target_record, vta
from .backends.cuda.graph import Capture
from .errors import ArtifactError, CompileError, OptionError
from .frontend import onnx as onnx_frontend
from .frontend.relax_signature import output_specs
from .model import CompiledModel
from .passes import DEFAULT_OPT_LEVEL, PIPELINES
from .passes.instruments import instrumented
from .passes.pipeline import after_quantize, without_winograd
from .passes.quantize.spec import QuantizeConfig
from .quantization import has_quantize_ops, prequantized, quantize_vta
from .quantization import quantize as quantize_model


def compile(  # noqa: A001 - the verb users expect
    model,
    target=None,
    input_shapes=None,
    example_inputs=None,
    opt_level: int = DEFAULT_OPT_LEVEL,
    dump_ir=None,
    print_pass_times: bool = False,
    quantize: str | None = None,
    calib=None,
    calib_method="minmax",
    skip=(),
    max_accuracy_drop=None,
    quantize_config=None,
    log=None,
    db=None,
    precision: str = "fp32",
    winograd: bool = True,
    cuda_graph: bool = False,
) -> CompiledModel:
    """Compile a model for `target`.

    Parameters
    ----------
    model : str, os.PathLike, bytes, onnx.ModelProto or torch.nn.Module
        An ONNX model, or a PyTorch module (exported to ONNX in memory; needs `example_inputs`).
    target : str, dict or tvm.target.Target, optional
        "llvm" (the host CPU, detected), or a JSON dict such as
        {"kind": "llvm", "mtriple": "aarch64-linux-gnu"}. Defaults to the host CPU.
    input_shapes : dict of str to tuple of int, optional
        Static shapes for inputs whose ONNX shapes are symbolic.
    example_inputs : tuple, optional
        Example tensors for a PyTorch module.
    opt_level : int
        0 (no graph passes, one kernel per op) to 3 (every pass; the default).
    dump_ir : str or os.PathLike, optional
        Write the IR after every pass into this directory.
    print_pass_times : bool
        Print how long each pass took.
    quantize : {"int8", "vta"}, optional
        Post-training int8 quantization of conv2d and matmul layers (needs `calib`; -O3 only).
        "vta" is VTA's recipe (power-of-two scales, shift requantization) on any target; the
        vta target uses it for "int8" too.
    calib : str, os.PathLike or iterable of dict, optional
        Calibration data: an .npz file (one sample), a directory of .npz files, or an iterable of
        input dicts. Streamed: memory does not grow with its size.
    calib_method : str or method config
        minmax, percentile, entropy or mse (or a config from tvmopt.passes.quantize.spec).
    skip : sequence of str
        Layers kept in float32: ONNX node names, as the quantize report lists them.
    max_accuracy_drop : float, optional
        Largest share (0 to 1) of the held calibration samples whose top-1 class may differ from
        float32; the most sensitive layers fall back to float32 until it holds.
    quantize_config : QuantizeConfig, optional
        All of the above in one object (plus symmetric activations); explicit arguments win.
    log : callable, optional
        Receives progress lines (calibration, fallbacks); None is silent.
    db : str or os.PathLike, optional
        A tuning database (`tvmopt tune --db`): kernels tuned for this target use their best
        record; the rest keep their untuned schedules (our CPU rules; dlight on GPUs).
    precision : {"fp32", "fp16"}
        fp16 (CUDA targets): convs and matmuls take float16 operands and accumulate in float32;
        inputs and outputs stay float32.
    winograd : bool
        CPU, -O3: 3x3 stride-1 convs on maps of 14 x 14 and more use Winograd's F(4x4, 3x3),
        with 4x fewer multiplies; their transformed weights are 4x the size. False keeps every
        conv direct, for the smaller library.
    cuda_graph : bool
        CUDA: the first run captures the model's kernels into a CUDA graph, and later runs
        replay it with one launch instead of one per kernel (backends/cuda/graph.py).

    Returns
    -------
    CompiledModel
    """
    resolved = resolve_target(target)  # options checked before minutes of import or calibration
    precision = checked_precision(precision, resolved)
    capture = _capture(cuda_graph, resolved)
    database = None if db is None else open_database(db, resolved)
    with instrumented(dump_ir, print_pass_times):
        prepared = prepare(
            model,
            resolved,
            input_shapes,
            example_inputs,
            opt_level,
            quantize,
            calib,
            calib_method,
            skip,
            max_accuracy_drop,
            quantize_config,
            log,
            winograd,
        )
        executable = _build(prepared, database, precision, capture)
    compiled = CompiledModel(executable, prepared.metadata, target=prepared.target)  # after _build
    compiled.quantize_report = prepared.report
    compiled.tuned_kernels = 0 if database is None else database.applied
    return compiled


@dataclasses.dataclass
class Prepared:
    """A model imported and, when asked for, quantized: what is left is the graph passes in
    `graph` (None: those of `opt_level`), lowering and scheduling; tuning starts from here too."""

    module: object
    graph: list | None
    metadata: Metadata
    target: object
    opt_level: int
    report: object = None


def prepare(  # noqa: PLR0913 - compile's arguments, less the output options
    model, target=None, input_shapes=None, example_inputs=None, opt_level=DEFAULT_OPT_LEVEL,
    quantize=None, calib=None, calib_method="minmax", skip=(), max_accuracy_drop=None,
    quantize_config=None, log=None, winograd=True,
) -> Prepared:  # fmt: skip
    """Import `model` for `target` and quantize it when asked (compile's arguments)."""
    check_opt_level(opt_level)
    resolved = resolve_target(target)
    proto = _to_onnx(model, example_inputs)
    onnx_model = onnx_frontend.prepare(proto, input_shapes)
    mod = onnx_frontend.import_model(onnx_model)
    inputs, _ = onnx_frontend.signature(onnx_model)
    outputs = output_specs(mod, [out.name for out in onnx_model.graph.output])
    metadata = Metadata(
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        target=target_record(resolved),
        tvmopt_version=__version__,
        tvm_version=tvm.__version__,
    )
    config = _quantize_config(quantize, calib, opt_level, quantize_config,
                              calib_method=calib_method, skip=skip,
                              max_accuracy_drop=max_accuracy_drop)  # fmt: skip
    if quantize == "vta" and cuda.is_cuda(resolved):
        raise OptionError("quantize='vta' (VTA's recipe) runs on CPU and VTA targets; "
                          "for cuda use quantize='int8'")  # fmt: skip
    if quantize == "vta" or vta.is_vta(resolved):
        mod = _vta_quantized(mod, onnx_model, inputs, resolved, quantize, config, calib, log)
        return Prepared(mod, vta.GRAPH, metadata, resolved, opt_level)
    mod, graph, report = _quantized(mod, onnx_model, inputs, resolved, opt_level, config,
                                    calib, log)  # fmt: skip
    if not winograd and not cuda.is_cuda(resolved):
        graph = without_winograd(graph, opt_level)
    return Prepared(mod, graph, metadata, resolved, opt_level, report)


def _vta_quantized(mod, onnx_model, inputs, target, quantize, config, calib, log):
    """VTA's recipe, for --target vta or for the CPU build that VTA's output is checked
    against (quantize="vta")."""
    if quantize is None:
        raise OptionError("target vta runs int8 layers: give quantize='int8' and calib=...")
    if config.skip or config.max_accuracy_drop is not None:
        raise OptionError("skip and max_accuracy_drop are not supported with VTA's recipe yet")
    return quantize_vta(mod, inputs, target, calib, log)


def _quantized(mod, prepared, inputs, target, opt_level, config, calib, log):
    """(module, graph passes still to run, QuantizeReport or None): int8 when asked for, or when
    the model is already quantized (QDQ, with the quantizer's own qparams); else `mod` as is."""
    if config is not None:
        quantized = quantize_model(mod, prepared, inputs, target, config, calib, log)
        return quantized.module, after_quantize(target), quantized.report
    if opt_level == 3 and has_quantize_ops(mod):
        return prequantized(mod, prepared, target), after_quantize(target), None
    return mod, None, None


def _quantize_config(quantize, calib, opt_level, config, **explicit):
    if quantize is None:
        return None
    if quantize not in ("int8", "vta"):
        raise OptionError(f"quantize must be 'int8', 'vta' (or None), got {quantize!r}")
    if calib is None:
        raise OptionError("quantize='int8' needs calibration data (calib=...)")
    if opt_level != 3:
        raise OptionError(f"int8 quantization runs at opt_level 3, got {opt_level}")
    explicit["skip"] = tuple(explicit["skip"])
    defaults = {"calib_method": "minmax", "skip": (), "max_accuracy_drop": None}
    fields = {"calib_method": "method", "skip": "skip", "max_accuracy_drop": "max_accuracy_drop"}
    overrides = {fields[k]: v for k, v in explicit.items() if v != defaults[k]}
    return dataclasses.replace(config or QuantizeConfig(), **overrides)


def check_opt_level(opt_level) -> None:
    if opt_level not in PIPELINES:
        raise OptionError(f"opt_level must be one of {sorted(PIPELINES)}, got {opt_level!r}")


def _to_onnx(model, example_inputs):
    from .frontend import torch_export

    if torch_export.is_torch_module(model):
        return torch_export.to_onnx(model, example_inputs)
    return onnx_frontend.load_model(model)


def checked_precision(precision: str, target) -> str:
    if precision not in ("fp32", "fp16"):
        raise OptionError(f"precision must be 'fp32' or 'fp16', got {precision!r}")
    if precision == "fp16" and not cuda.is_cuda(target):
        raise OptionError("precision 'fp16' is for CUDA targets; CPU kernels stay float32")
    return precision


def _capture(cuda_graph: bool, target) -> Capture | None:
    if not cuda_graph:
        return None
    if not cuda.is_cuda(target):
        raise OptionError("cuda_graph is for CUDA targets (a CPU has no kernel launches to save)")
    return Capture()


def _build(prepared: Prepared, database=None, precision="fp32", capture=None):
    kind = prepared.target.kind.name
    try:
        if kind == "cuda":
            return _build_cuda(prepared, database, precision, capture)
        if vta.is_vta(prepared.target):
            return _build_vta(prepared, database)
        return llvm.build(prepared.module, prepared.target, prepared.opt_level, prepared.graph,
                          database)  # fmt: skip
    except Exception as err:  # noqa: BLE001 - TVM's lowering raises any type
        last_line = (str(err).strip().splitlines() or [""])[-1]
        raise CompileError(
            f"TVM failed to compile the model: {type(err).__name__}: {last_line}"
        ) from err


def _build_cuda(prepared: Prepared, database, precision, capture):
    """The CUDA build; with a `capture`, the library's metadata records how many kernel
    launches its CUDA graphs hold."""
    executable = cuda.build(prepared.module, prepared.target, prepared.opt_level, prepared.graph,
                            database, precision, capture)  # fmt: skip
    if capture is not None:
        extra = {**prepared.metadata.extra, "cuda_graph": capture.record()}
        prepared.metadata = dataclasses.replace(prepared.metadata, extra=extra)
    return executable


def _build_vta(prepared: Prepared, database):
    """The VTA build; where each layer went is recorded in the library's metadata."""
    executable, placement = vta.build(prepared.module, prepared.target, prepared.opt_level,
                                      prepared.graph, database)  # fmt: skip
    record = {"vta": {"layers": placement.records()}}
    prepared.metadata = dataclasses.replace(prepared.metadata, extra=record)
    return executable


def load(path) -> CompiledModel:
    """Load a library written by `CompiledModel.export` or `tvmopt compile`."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"compiled model not found: {path}")
    metadata = read_metadata(path)
    if metadata.target.get("kind") == "cuda" and not cuda.toolchain.runtime_loaded():
        cuda.toolchain.enable_codegen()  # TVM's CUDA runtime reads the library's device code
    try:
        module = tvm.runtime.load_module(str(path))
    except Exception as err:  # noqa: BLE001 - dlopen failures surface as several types
        raise ArtifactError(f"cannot load {path}: {str(err).strip().splitlines()[-1]}") from None
    return CompiledModel(module, metadata, library_path=path)
