"""The Python API: `compile` a model into a CompiledModel and `load` an exported one."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from . import bucket_padding as padding
from ._tvm import tvm
from .artifact import Metadata, read_metadata, verify_checksum
from .autotune.database import open_database
from .backends import BuildOptions, recorded_backend, resolve, target_record
from .buckets import BUCKETS_RECORD, resolve_buckets
from .dims import resolve as dim_ranges
from .dims import with_dim_bounds
from .errors import (
    ArtifactError,
    CompileError,
    OptionError,
    TargetError,
    first_diagnostic,
    last_line,
)
from .frontend import onnx as onnx_frontend
from .frontend.relax_signature import output_specs
from .isa_variants import Fleet, check_targets, loadable
from .kv_cache import check_mode as check_kv_cache
from .kv_cache import contract as kv_cache_contract
from .model import CompiledModel
from .passes import DEFAULT_OPT_LEVEL, OPT_LEVELS
from .passes.instruments import instrumented
from .passes.quantize.quantize_weights import SCHEMES as WEIGHT_SCHEMES
from .passes.quantize.quantize_weights import weight_only_config
from .passes.quantize.spec import QuantizeConfig
from .quantization import quantize_for
from .version import __version__


def compile(  # noqa: A001 - the verb users expect
    model,
    target=None,
    input_shapes=None,
    example_inputs=None,
    opt_level: int = DEFAULT_OPT_LEVEL,
    dims=None,
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
    group_size: int | None = None,
    sparse: str = "auto",
    buckets=None,
    bucket_padding: str | None = None,
    isa_variants=(),
    kv_cache: str = "concat",
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
    dims : dict of str to (int, int), optional
        Ranges of the inputs' symbolic dims, by the names the model gives them, such as
        {"sequence": (1, 512), "batch": (1, 8)} (or "1..512"; hi None: no limit). The model
        compiles once for every size in range; a dim not named takes any size from 1. Runs
        outside the ranges are refused (InputError).
    buckets : dict of str to list of int, optional
        Sizes of symbolic dims to compile static variants for, beside the symbolic code, such
        as {"sequence": [16, 64, 128]}: a run of exactly such a size takes that variant's
        static kernels, any other size the symbolic ones (buckets.py). CPU targets, float.
    bucket_padding : str, optional
        The name of the model's attention-mask input: a run that is no bucket's size then pads
        (zeros) up to the smallest bucket holding at most 1.25x its elements and cuts the
        outputs back (bucket_padding.py). The compile checks that padding leaves the outputs
        as they were (the model masks the padded positions), and refuses it otherwise.
    isa_variants : sequence of str or dict, optional
        More CPU targets to compile the model for, such as ["x86-64-v4"] beside the target
        "x86-64-v3": the exported library holds each (isa_variants.py), and `tvmopt.load` or
        the C++ runner runs the one with the most features this CPU has, else `target`'s code.
        The model returned is that same choice. Each variant's weights add to the file.
    dump_ir : str or os.PathLike, optional
        Write the IR after every pass into this directory.
    print_pass_times : bool
        Print how long each pass took.
    quantize : {"int8", "vta", "int4-weights", "int8-weights", "int4-weights-a8", ...}, optional
        Post-training int8 quantization of conv2d and matmul layers (needs `calib`; -O3 only).
        "vta" is VTA's recipe (power-of-two scales, shift requantization) on any target; the
        vta target uses it for "int8" too. "int4-weights" and "int8-weights" (CPU targets,
        -O3, no `calib`) quantize only the constant weights of matmuls, in groups of
        `group_size` rows along K, and dequantize them inside the kernel: for decoding,
        whose matrix-vector products are memory-bound. The "-a8" forms also round the
        activations to int8 per group and multiply in integers on the CPU's int8 dot product
        (as ONNX Runtime's MatMulNBits at accuracy level 4): faster, not float32's result.
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
    group_size : {32, 64, 128}, optional
        Weight-only quantization: rows of K per scale (and zero point). Default 32 for
        int4-weights, 128 for int8-weights; one that does not divide a weight's K is refused.
    sparse : {"auto", "off", "force"}
        CPU, -O3: matmuls whose constant weight has zeros run a sparse kernel (BSR in 1 x B
        blocks, or CSR) where it is estimated faster (auto), wherever the weight has a zero
        (force), or never (off). The library's "sparse" metadata says, per layer, the weight's
        density and block structure and the kernel chosen (`tvmopt inspect`).
    kv_cache : {"concat", "in-place", "auto"}
        A decoder's KV cache (kv_cache.py): past in, past + new out, each step (concat, ONNX's
        contract); or one preallocated cache per past input, the past dim's upper bound + 1
        rows, written in place at input `past_length` (in-place); auto: in place where the
        graph allows it.

    Returns
    -------
    CompiledModel
    """
    arguments = dict(locals())  # compiled again for each ISA variant
    check_kv_cache(kv_cache)
    options = BuildOptions(precision=precision, winograd=winograd, cuda_graph=cuda_graph,
                           sparse=sparse)  # fmt: skip
    backend = resolve(target, options)  # options checked before minutes of import or calibration
    check_targets(backend, [resolve(variant, options) for variant in isa_variants])
    if isa_variants and calib is not None and iter(calib) is calib:
        calib = arguments["calib"] = list(calib)  # an iterator calibrates once only
    database = None if db is None else open_database(db, backend.target)
    with instrumented(dump_ir, print_pass_times):
        prepared = prepare(
            model,
            backend,
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
            dims,
            group_size,
            buckets=buckets,
            bucket_padding=bucket_padding,
            kv_cache=kv_cache,
        )
        executable = _build(prepared, database)
    compiled = CompiledModel(executable, prepared.metadata, backend=backend)  # after _build
    if bucket_padding is not None:
        padding.check(compiled, bucket_padding)
    compiled.quantize_report = prepared.report
    compiled.tuned_kernels = 0 if database is None else database.applied
    return _with_isa_variants(compiled, arguments) if isa_variants else compiled


def _with_isa_variants(baseline: CompiledModel, arguments: dict) -> CompiledModel:
    """The model compiled for each of `arguments`' ISA variants too: the one this CPU runs best
    (each exports the library holding all of them)."""
    variants = []
    for variant in arguments["isa_variants"]:
        if arguments["log"] is not None:
            arguments["log"](f"ISA variant {variant}")
        variants.append(compile(**{**arguments, "target": variant, "isa_variants": ()}))
    return Fleet(baseline, variants).best_here()


@dataclasses.dataclass
class Prepared:
    """A model imported and, when asked for, quantized: what is left is the graph passes in
    `graph`, lowering and scheduling by `backend`; tuning starts from here too."""

    module: object
    graph: list
    metadata: Metadata
    backend: object
    opt_level: int
    report: object = None
    variants: dict = dataclasses.field(default_factory=dict)  # buckets: function -> module

    @property
    def target(self):
        return self.backend.target


def prepare(  # noqa: PLR0913 - compile's arguments, less the output options
    model, target=None, input_shapes=None, example_inputs=None, opt_level=DEFAULT_OPT_LEVEL,
    quantize=None, calib=None, calib_method="minmax", skip=(), max_accuracy_drop=None,
    quantize_config=None, log=None, dims=None, group_size=None, buckets=None,
    bucket_padding=None, kv_cache="concat",
) -> Prepared:  # fmt: skip
    """Import `model` for `target` (a Backend, or anything `backends.resolve` takes) and
    quantize it when asked (compile's arguments)."""
    check_opt_level(opt_level)
    backend = resolve(target)
    config = _quantize_config(quantize, calib, opt_level, quantize_config,
                              calib_method=calib_method, skip=skip,
                              max_accuracy_drop=max_accuracy_drop)  # fmt: skip
    config = weight_only_options(quantize, group_size, backend, opt_level) or config
    recipe = backend.recipe(quantize)  # before the import: a refused recipe costs nothing
    raw_model = _to_onnx(model, example_inputs)
    onnx_model = onnx_frontend.prepare(raw_model, input_shapes)
    inputs, _ = onnx_frontend.signature(onnx_model)
    ranges = dim_ranges(inputs, dims)  # before the import: a misspelt name costs nothing
    chosen = resolve_buckets(buckets, ranges)
    _check_bucketable(chosen, backend, quantize)
    padding.check_mask(bucket_padding, inputs, chosen)
    mod = with_dim_bounds(onnx_frontend.import_model(onnx_model), ranges)
    if chosen and kv_cache != "concat":  # the buckets' functions import the ONNX contract
        raise OptionError(f"kv_cache={kv_cache!r} is not built with buckets; leave one out")
    cache = kv_cache_contract(mod, inputs, ranges, kv_cache)
    mod, inputs = cache.module, list(cache.inputs)
    quantized = quantize_for(backend, recipe, mod, onnx_model, inputs, config, calib, log,
                             opt_level)  # fmt: skip
    metadata = Metadata(
        inputs=tuple(inputs),
        outputs=tuple(output_specs(mod, [out.name for out in onnx_model.graph.output])),
        target=target_record(backend.target),
        tvmopt_version=__version__,
        tvm_version=tvm.__version__,
        backend=backend.name,
        precision=backend.options.precision,
        quantization="none" if quantized is None else quantized.mode,
        dims={name: dim.to_list() for name, dim in ranges.items()},
        extra=_bucket_records(chosen, bucket_padding) | cache.record,
    )
    if quantized is None:
        return Prepared(mod, backend.graph_passes(opt_level), metadata, backend, opt_level,
                        variants=_import_variants(raw_model, inputs, chosen))  # fmt: skip
    return Prepared(quantized.module, quantized.graph, metadata, backend, opt_level,
                    quantized.report)  # fmt: skip


def _bucket_records(buckets, mask) -> dict:
    records = {BUCKETS_RECORD: [bucket.to_dict() for bucket in buckets]} if buckets else {}
    if mask is not None:
        records[padding.PADDING_RECORD] = {"mask": mask, "limit": padding.PAD_LIMIT}
    return records


def _check_bucketable(buckets, backend, quantize) -> None:
    if buckets and not backend.buckets:
        raise OptionError(f"buckets are built for CPU targets (llvm), not {backend.name}")
    if buckets and quantize is not None:
        raise OptionError("buckets are built for float models; leave out quantize")


def _import_variants(raw_model, inputs, buckets) -> dict:
    """Each bucket's model, every input pinned to its sizes, imported: function -> module."""
    return {bucket.function: onnx_frontend.import_model(
                onnx_frontend.prepare(raw_model, bucket.input_shapes(inputs)))
            for bucket in buckets}  # fmt: skip


def weight_only_options(quantize, group_size, backend, opt_level):
    """The WeightOnlyConfig of a weight-only `quantize`, else None (group_size refused)."""
    if quantize not in WEIGHT_SCHEMES:
        if group_size is not None:
            raise OptionError("group_size is for quantize='int4-weights' or 'int8-weights'")
        return None
    if not backend.weight_only:
        raise OptionError(f"quantize={quantize!r} runs on CPU targets (llvm), not {backend.name}")
    if opt_level != 3:
        raise OptionError(f"weight-only quantization runs at opt_level 3, got {opt_level}")
    return weight_only_config(quantize, group_size)


def _quantize_config(quantize, calib, opt_level, config, **explicit):
    if quantize is None or quantize in WEIGHT_SCHEMES:
        return None
    if quantize not in ("int8", "vta"):
        raise OptionError(f"quantize must be 'int8', 'vta', 'int4-weights', 'int8-weights', "
                          f"'int4-weights-a8', 'int8-weights-a8' (or None), "
                          f"got {quantize!r}")  # fmt: skip
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
    if opt_level not in OPT_LEVELS:
        raise OptionError(f"opt_level must be one of {sorted(OPT_LEVELS)}, got {opt_level!r}")


def _to_onnx(model, example_inputs):
    from .frontend import torch_export

    if torch_export.is_torch_module(model):
        return torch_export.to_onnx(model, example_inputs)
    return onnx_frontend.load_model(model)


def _build(prepared: Prepared, database=None):
    """The backend's build; what it records (VTA's layer placement, CUDA graphs' launches) goes
    into the library's metadata."""
    try:
        executable = _build_executable(prepared, database)
    except Exception as err:  # noqa: BLE001 - TVM's lowering raises any type
        raise CompileError(
            f"TVM failed to compile the model: {type(err).__name__}: {first_diagnostic(err)}"
        ) from err
    extra = {**prepared.metadata.extra, **prepared.backend.record()}
    prepared.metadata = dataclasses.replace(prepared.metadata, extra=extra)
    return executable


def _build_executable(prepared: Prepared, database):
    backend = prepared.backend
    if prepared.variants:
        return backend.build_with_variants(prepared.module, prepared.variants, prepared.graph,
                                           prepared.opt_level, database)  # fmt: skip
    return backend.build(prepared.module, prepared.graph, prepared.opt_level, database)


def load(path) -> CompiledModel:
    """Load a library written by `CompiledModel.export` or `tvmopt compile`."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"compiled model not found: {path}")
    verify_checksum(path)  # first: a changed byte in the metadata record is corruption too
    metadata = read_metadata(path)
    with loadable(path, metadata) as (library, metadata):  # an ISA variant, or the library
        try:
            backend = recorded_backend(metadata)
        except TargetError as err:
            raise ArtifactError(f"cannot load {path}: {err}") from None
        backend.before_load(metadata, path)  # a library for another CPU is refused here
        try:
            module = tvm.runtime.load_module(str(library))
        except Exception as err:  # noqa: BLE001 - dlopen failures surface as several types
            raise ArtifactError(f"cannot load {path}: {last_line(err)}") from None
    return CompiledModel(module, metadata, library_path=path)
