"""The CPU pipeline, top to bottom: the target-neutral graph passes of the opt level
(passes/pipeline.py); at -O3, after int8 quantization, the passes that shape work for our CPU
kernels; then lowering, with our schedule rules (rules.py) on every kernel no tuning record
covers."""

from __future__ import annotations

from tvm import relax

from ...passes.channel_shuffle import FoldChannelShuffle
from ...passes.dim_params_as_shapes import dim_params_as_shapes
from ...passes.fast_math import FAST_LEGALIZATIONS
from ...passes.fuse_epilogue import FuseEpilogue
from ...passes.half_accumulate import HalfAccumulate
from ...passes.infinite_extrema import INFINITE_EXTREMA
from ...passes.injective_reshape import injective_reshape
from ...passes.keep_gates_apart import keep_gates_apart
from ...passes.pipeline import GRAPH_PASSES, apply_database, named
from ...passes.safe_indexing import SafeIndexing
from ...passes.simplify import Simplify
from ...passes.vector_round import VECTOR_ROUND
from ..kernel_record import KernelRecord
from .cache_rows_into_matmul import cache_rows_into_matmul
from .concat_in_chunks import CONCAT_IN_CHUNKS
from .conv1x1_as_matmul import Conv1x1AsMatmul
from .conv_channels_last import ConvChannelsLast
from .fuse_weight_only import FuseWeightOnly
from .intrin_int8 import register_int8_steps
from .pack_matmul_weights import PackMatmulWeights
from .rules import deinterleave_pass, schedule_pass
from .schedule_util import vector_lanes
from .symbolic_softmax import softmax_legalization
from .transposed_matmul import transpose_into_matmul

T = relax.transform


def after_quantize(winograd: bool, lanes: int, row_block: int = 1, accumulators: int = 0,
                   cpu=None) -> list:  # fmt: skip
    """-O3's CPU passes, which follow int8 quantization (or the float graph passes); weights in
    panels of `lanes` float32 (the target's vector: cpu.py), matmul rows padded to whole
    register blocks of `row_block` and conv positions to whole tiles of `accumulators` vectors
    where they divide badly; `cpu` (cpu.CPU) for the int8-activation weight-only kernel."""
    return [
        ("dataflow", T.ConvertToDataflow),  # quantization's taps leave plain binding blocks
        ("fold_channel_shuffle", lambda: FoldChannelShuffle),  # shuffles -> the next conv
        # float convs NHWC, positions in whole register tiles
        ("conv_channels_last", lambda: ConvChannelsLast(winograd, lanes, accumulators)),
        ("conv1x1_as_matmul", lambda: Conv1x1AsMatmul),  # 7x7 / 14x14 maps: vectors over channels
        ("fuse_weight_only", lambda: FuseWeightOnly(lanes, cpu)),  # blocked weights: packed, fused
        ("pack_matmul_weights", lambda: PackMatmulWeights(lanes, row_block)),  # W -> panels
        ("simplify_2", lambda: Simplify),  # with one row, the panels' permute is a reshape
        ("fuse_epilogue", FuseEpilogue),  # conv/matmul + bias + activation + residual -> 1 kernel
    ]


def with_node_spans(graph: list, record: KernelRecord) -> list:
    """`graph` with the kernel record's reading of the calls' ONNX nodes before fuse_epilogue,
    whose fused bodies lose them (kernel_nodes.py)."""
    names = [name for name, _ in graph]
    at = names.index("fuse_epilogue") if "fuse_epilogue" in names else len(graph)
    return [*graph[:at], ("record_node_spans", record.nodes.spans_pass), *graph[at:]]


def graph_passes(opt_level: int, winograd: bool, lanes: int, row_block: int = 1,
                 accumulators: int = 0, cpu=None) -> list:  # fmt: skip
    if opt_level == 3:
        return GRAPH_PASSES[3] + after_quantize(winograd, lanes, row_block, accumulators, cpu)
    return GRAPH_PASSES[opt_level]


def lowering_passes(opt_level: int, target, database=None, record=None) -> list:
    """TVM's CPU lowering; from -O2, TVM's FuseOps also groups the remaining element-wise ops, and
    at -O3 transcendental functions legalize to their fast, vectorizable forms (fast_math.py).
    round and concat legalize to forms that vectorize at every level (vector_round.py,
    concat_in_chunks.py).

    TVM's own FoldConstant is left out on purpose: it has no size cap, and folding the generated
    weights of onnx's light VGG-19 grew its library from 33 MiB to 489 MiB. Ours has the cap.
    """
    from tvm.relax.backend.cpu_generic import pipeline as cpu

    record = record or KernelRecord()
    fast = FAST_LEGALIZATIONS if opt_level >= 3 else {}
    legalizations = {**VECTOR_ROUND, **CONCAT_IN_CHUNKS, **INFINITE_EXTREMA, **fast}
    if opt_level >= 2:  # softmax along a symbolic row: its reductions in whole vectors
        lanes = vector_lanes(target)
        legalizations["relax.nn.softmax"] = softmax_legalization(lanes, fast=opt_level >= 3)
    passes = [
        ("safe_indexing", SafeIndexing),  # run-time gather indices clamp, never read out of bounds
        ("half_accumulate", HalfAccumulate),  # float16 matmul and softmax computed in float32
        *([("cache_rows_into_matmul", cache_rows_into_matmul)] if opt_level >= 2 else []),  # KV
        *([("transpose_into_matmul", transpose_into_matmul)] if opt_level >= 2 else []),  # K^T
        ("record_node_spans_2", record.nodes.spans_pass()),  # legalization drops the calls' spans
        ("legalize", T.LegalizeOps(customize_legalize_map=legalizations)),
        ("annotate_patterns", T.AnnotateTIROpPattern()),
        ("injective_reshape", injective_reshape),  # symbolic reshapes fuse as static ones do
        ("keep_gates_apart", keep_gates_apart),  # x * sigmoid(conv(..)): the conv keeps its rule
    ]
    if opt_level >= 2:
        passes.append(("fuse_elementwise", T.FuseOps()))
        passes.append(("dim_params_as_shapes", dim_params_as_shapes))  # FuseTIR defines dims once
    passes.append(("map_kernel_nodes", record.nodes.nodes_pass()))  # while fused bodies are Relax
    if opt_level >= 2:
        passes.append(("fuse_tir", T.FuseTIR()))
        passes.append(("rename_kernel_nodes", record.nodes.renamed_pass()))
    passes.append(("deinterleave_strided_inputs", deinterleave_pass))
    passes.append(("count_kernel_flops", record.count_pass()))  # before tensorized steps hide them
    if database is not None:  # tuned kernels first; the rules skip what is scheduled
        register_int8_steps()  # records name our steps
        passes.append(("apply_tuning_records", apply_database(database)))
    passes.append(("schedule_cpu", schedule_pass()))
    passes.append(("record_kernel_rules", record.rules_pass()))
    tail = cpu.dataflow_lower_passes(target) + cpu.finalize_passes(target)
    return [*named(cpu.library_dispatch_passes(target)), *passes, *named(tail)]
