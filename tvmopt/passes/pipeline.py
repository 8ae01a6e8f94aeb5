"""The optimization pipeline: one flat, named list of passes per opt level, read top to bottom.

Our graph passes run on high-level Relax; `lowering` then legalizes ops into TIR and builds the
VM program. -O0 lowers the imported graph as it is: one kernel per op, nothing folded or fused.
"""

from __future__ import annotations

from tvm import relax

from .._tvm import tvm
from ..backends.cuda.graph import with_capture
from ..backends.cuda.rule_int8_gemm import Int8Gemm as Int8GpuGemm
from ..backends.cuda.target import is_cuda
from ..backends.llvm.rules import deinterleave_pass, schedule_pass
from .clip_as_min_max import ClipAsMinMax
from .conv1x1_as_matmul import Conv1x1AsMatmul
from .conv_channels_last import ConvChannelsLast, DirectConvChannelsLast
from .fast_math import FAST_LEGALIZATIONS
from .fold_constants import FoldConstants
from .fold_scale_shift import FoldScaleShift
from .fuse_epilogue import FuseEpilogue
from .pack_matmul_weights import PackMatmulWeights
from .recognize_activations import RecognizeActivations
from .safe_indexing import SafeIndexing
from .simplify import Simplify
from .vector_round import VECTOR_ROUND

DEFAULT_OPT_LEVEL = 3
T = relax.transform

O1 = [
    ("canonicalize", T.CanonicalizeBindings),  # tuple-of-consts[i] -> the const; x = y -> y
    ("fold_constants", FoldConstants),  # numpy-evaluated constants, inlined into their uses
    ("simplify", lambda: Simplify),  # x*1, no-op reshapes, layout chains
    ("dead_code", T.DeadCodeElimination),  # bindings nobody reads
]
DECOMPOSE = [
    ("decompose_batch_norm", T.DecomposeOpsForInference),  # batch_norm -> (x-m)/s*g+b
]
INTO_WEIGHTS = [
    ("fold_constants_2", FoldConstants),  # the decomposed constants
    ("fold_scale_shift", lambda: FoldScaleShift),  # batch norm and scales into weights and bias
    ("merge_duplicates", T.EliminateCommonSubexpr),  # one copy of each identical expression
    ("dead_code_2", T.DeadCodeElimination),
]
O2 = O1 + DECOMPOSE + INTO_WEIGHTS
# int8 quantization (passes/quantize) runs between these two halves of O3: on folded weights,
# before they are packed for the float32 kernels
O3_BEFORE_QUANTIZE = O1 + DECOMPOSE + [
    # before fold_scale_shift, which would turn GELU's division by sqrt(2) into a product
    ("recognize_activations", lambda: RecognizeActivations),  # erf spelled out -> gelu
] + INTO_WEIGHTS  # fmt: skip
O3_AFTER_QUANTIZE = [
    ("dataflow", T.ConvertToDataflow),  # quantization's taps leave plain binding blocks
    ("conv_channels_last", lambda: ConvChannelsLast),  # float convs NHWC (3x3: Winograd)
    ("conv1x1_as_matmul", lambda: Conv1x1AsMatmul),  # 7x7 / 14x14 maps: vectors over channels
    ("pack_matmul_weights", lambda: PackMatmulWeights),  # W[K,N] -> contiguous column panels
    ("simplify_2", lambda: Simplify),  # with one row, the panels' permute is a reshape
    ("fuse_epilogue", FuseEpilogue),  # conv/matmul + bias + activation + residual -> 1 kernel
]
O3 = O3_BEFORE_QUANTIZE + O3_AFTER_QUANTIZE
PIPELINES = {0: [], 1: O1, 2: O2, 3: O3}
# CUDA keeps the target-neutral passes; the rest of O3 shapes work for our CPU rules, and TVM's
# FuseOps fuses the epilogues on GPUs.
CUDA_PIPELINES = {0: [], 1: O1, 2: O2, 3: O3_BEFORE_QUANTIZE}
CUDA_AFTER_QUANTIZE = [("dataflow", T.ConvertToDataflow)]


def after_quantize(target) -> list:
    """The graph passes that follow int8 quantization on `target`."""
    return CUDA_AFTER_QUANTIZE if is_cuda(target) else O3_AFTER_QUANTIZE


def without_winograd(graph: list | None, opt_level: int) -> list:
    """The CPU graph passes `graph` (None: those of `opt_level`) with every float conv on the
    direct kernel: a smaller library, since Winograd's weights are 4x the 3x3 ones they replace."""
    passes = PIPELINES[opt_level] if graph is None else graph
    direct = ("conv_channels_last", lambda: DirectConvChannelsLast)
    return [direct if name == direct[0] else (name, make) for name, make in passes]


def graph_passes(
    opt_level: int, pipeline=None, target=None
) -> list[tuple[str, tvm.transform.Pass]]:
    if pipeline is None:
        pipeline = (CUDA_PIPELINES if is_cuda(target) else PIPELINES)[opt_level]
    return [(name, make()) for name, make in pipeline]


def lowering_passes(opt_level: int, target, database=None,
                    capture=None) -> list[tuple[str, tvm.transform.Pass]]:  # fmt: skip
    if is_cuda(target):
        return cuda_lowering_passes(opt_level, target, database, capture)
    return cpu_lowering_passes(opt_level, target, database)


def cpu_lowering_passes(opt_level, target, database=None) -> list[tuple[str, tvm.transform.Pass]]:
    """TVM's CPU lowering; from -O2, TVM's FuseOps also groups the remaining element-wise ops, and
    at -O3 transcendental functions legalize to their fast, vectorizable forms (fast_math.py).
    round legalizes to a form that vectorizes at every level (vector_round.py).

    TVM's own FoldConstant is left out on purpose: it has no size cap, and folding the generated
    weights of onnx's light VGG-19 grew its library from 33 MiB to 489 MiB. Ours has the cap.
    """
    from tvm.relax.backend.cpu_generic import pipeline as cpu

    legalizations = {**VECTOR_ROUND, **(FAST_LEGALIZATIONS if opt_level >= 3 else {})}
    passes = [
        ("safe_indexing", SafeIndexing),  # run-time gather indices clamp, never read out of bounds
        ("legalize", T.LegalizeOps(customize_legalize_map=legalizations)),
        ("annotate_patterns", T.AnnotateTIROpPattern()),
    ]
    if opt_level >= 2:
        passes += [("fuse_elementwise", T.FuseOps()), ("fuse_tir", T.FuseTIR())]
    passes.append(("deinterleave_strided_inputs", deinterleave_pass))
    if database is not None:  # tuned kernels first; the rules skip what is scheduled
        passes.append(("apply_tuning_records", _apply_database(database)))
    passes.append(("schedule_cpu", schedule_pass()))
    tail = cpu.dataflow_lower_passes(target) + cpu.finalize_passes(target)
    return [*_named(cpu.library_dispatch_passes(target)), *passes, *_named(tail)]


def cuda_lowering_passes(opt_level, target, database=None,
                         capture=None) -> list[tuple[str, tvm.transform.Pass]]:  # fmt: skip
    """TVM's CUDA lowering, with dlight's GPU rules scheduling what the database does not (and
    ours for the int8 layers: backends/cuda/rule_int8_gemm.py). A `capture` (graph.Capture)
    switches on TVM's capture of the kernels into CUDA graphs, and receives its count."""
    from tvm.relax.backend.cuda import pipeline as cuda
    from tvm.s_tir import dlight as dl

    fast = FAST_LEGALIZATIONS if opt_level >= 3 else None
    passes = [
        ("safe_indexing", SafeIndexing),
        ("legalize", T.LegalizeOps(customize_legalize_map=fast)),
        ("annotate_patterns", T.AnnotateTIROpPattern()),
        ("fuse_ops", T.FuseOps()),  # on a GPU, one kernel per op costs a launch and a round trip
        ("fuse_tir", T.FuseTIR()),
    ]
    if database is not None:
        passes.append(("apply_tuning_records", _apply_database(database)))
    rules = dl.ApplyDefaultSchedule(Int8GpuGemm(), dl.gpu.Matmul(), dl.gpu.GEMV(),
                                    dl.gpu.Reduction(), dl.gpu.GeneralReduction(),
                                    dl.gpu.Fallback())  # fmt: skip
    passes.append(("schedule_gpu", rules))
    tail = _named(cuda.dataflow_lower_passes(target) + cuda.finalize_passes(target))
    if capture is not None:
        tail = with_capture(tail, capture)
    return [*_named(cuda.library_dispatch_passes(target)), *passes, *tail]


def _apply_database(database) -> tvm.transform.Pass:
    @tvm.transform.module_pass(opt_level=0, name="tvmopt.ApplyTuningRecords")
    def apply(mod, ctx):
        with database:
            scheduled = T.MetaScheduleApplyDatabase()(mod)
        database.applied = _scheduled_count(scheduled) - _scheduled_count(mod)
        return scheduled

    return apply


def _scheduled_count(mod) -> int:
    return sum(
        1 for func in mod.functions.values()
        if isinstance(func, tvm.tirx.PrimFunc) and func.attrs and "tirx.is_scheduled" in func.attrs
    )  # fmt: skip


def _named(passes) -> list[tuple[str, tvm.transform.Pass]]:
    return [(p.info.name, p) for p in passes]


def build_pipeline(opt_level: int, target, graph=None, database=None, precision="fp32",
                   capture=None):  # fmt: skip
    """The whole Relax pipeline for tvm.compile: our graph passes (those of `opt_level`, or the
    named list `graph`), fp16 storage when asked, then lowering, with the tuning `database`'s
    records when given (and CUDA graph capture with a `capture`)."""
    passes = graph_passes(opt_level, graph, target) + _precision(precision)
    passes += lowering_passes(opt_level, target, database, capture)
    return _sequential(f"tvmopt.O{opt_level}", passes, target)


def _precision(precision: str) -> list[tuple[str, tvm.transform.Pass]]:
    """fp16: convs and matmuls take float16 operands and accumulate in float32; the model's
    inputs and outputs stay float32."""
    if precision == "fp16":
        return [
            ("clip_as_min_max", ClipAsMinMax),  # ToMixedPrecision cannot cast clip's bounds
            ("mixed_precision", T.ToMixedPrecision(out_dtype="float32")),
            ("fold_fp16_weights", FoldConstants()),  # astype(weight) -> a float16 weight
        ]
    return []


def tuning_pipeline(opt_level: int, target, graph=None, precision="fp32") -> tvm.transform.Pass:
    """build_pipeline up to scheduling: its output's TIR functions are the kernels to tune."""
    passes = graph_passes(opt_level, graph, target) + _precision(precision)
    passes += lowering_passes(opt_level, target)
    names = [name for name, _ in passes]
    first_schedule = next(i for i, name in enumerate(names) if name.startswith("schedule_"))
    return _sequential("tvmopt.tuning", passes[:first_schedule], target)


def _sequential(name: str, passes, target) -> tvm.transform.Pass:

    @tvm.transform.module_pass(opt_level=0, name=name)
    def pipeline(mod, ctx):
        with target:
            return tvm.transform.Sequential([p for _, p in passes])(mod)

    return pipeline
