"""The CUDA pipeline, top to bottom: the target-neutral graph passes of the opt level (the CPU's
layout passes shape work for our CPU rules; TVM's FuseOps fuses the epilogues on GPUs), fp16
storage when asked, then lowering with dlight's GPU rules (ours for the int8 layers)."""

from __future__ import annotations

from tvm import relax

from ...passes.dim_params_as_shapes import dim_params_as_shapes
from ...passes.fast_math import FAST_LEGALIZATIONS
from ...passes.infinite_extrema import INFINITE_EXTREMA
from ...passes.pipeline import GRAPH_PASSES, apply_database, named
from ...passes.safe_indexing import SafeIndexing
from .graph import with_capture
from .intrin_dp4a import register_dp4a
from .rule_int8_gemm import Int8Gemm

T = relax.transform
AFTER_QUANTIZE = [("dataflow", T.ConvertToDataflow)]  # quantization's taps leave plain blocks


def graph_passes(opt_level: int) -> list:
    return GRAPH_PASSES[opt_level]


def lowering_passes(opt_level, target, database=None, capture=None) -> list:
    """TVM's CUDA lowering, with dlight's GPU rules scheduling what the database does not (and
    ours for the int8 layers: rule_int8_gemm.py). A `capture` (graph.Capture) switches on TVM's
    capture of the kernels into CUDA graphs, and receives its count."""
    from tvm.relax.backend.cuda import pipeline as cuda
    from tvm.s_tir import dlight as dl

    legalizations = {**INFINITE_EXTREMA, **(FAST_LEGALIZATIONS if opt_level >= 3 else {})}
    passes = [
        ("safe_indexing", SafeIndexing),
        ("legalize", T.LegalizeOps(customize_legalize_map=legalizations)),
        ("annotate_patterns", T.AnnotateTIROpPattern()),
        ("fuse_ops", T.FuseOps()),  # on a GPU, one kernel per op costs a launch and a round trip
        ("dim_params_as_shapes", dim_params_as_shapes),  # FuseTIR defines each dim once
        ("fuse_tir", T.FuseTIR()),
    ]
    if database is not None:
        register_dp4a()  # records may name it
        passes.append(("apply_tuning_records", apply_database(database)))
    rules = dl.ApplyDefaultSchedule(Int8Gemm(), dl.gpu.Matmul(), dl.gpu.GEMV(),
                                    dl.gpu.Reduction(), dl.gpu.GeneralReduction(),
                                    dl.gpu.Fallback())  # fmt: skip
    passes.append(("schedule_gpu", rules))
    tail = named(cuda.dataflow_lower_passes(target) + cuda.finalize_passes(target))
    if capture is not None:
        tail = with_capture(tail, capture)
    return [*named(cuda.library_dispatch_passes(target)), *passes, *tail]
