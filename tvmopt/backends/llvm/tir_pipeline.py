"""TVM's default TIR lowering (its `s_tir` pipeline, as tvm.tirx.build runs it) with one pass
added: StmtSimplify right after LoopPartition.

LoopPartition (asked by our hints, symbolic_loops.py) proves a loop's conditions in each part
and substitutes True for what it proves, but leaves the rest unsimplified: attention's scaled
Q @ K^T with both dims symbolic writes its tile under `(tile < tiles or row == 0) and row < n
and (..same for the column..)`, which in the whole tiles becomes `Or(True, column == 0)`.
VectorizeLoop, which runs next, sees a condition on the vector lane and scalarizes the write
(a scalar multiply and store per element, 7 x 32 per tile). Simplified first, it is `True`
and the write stays one vector store per row, as in the static kernel. Registered under NAME
with TVM's register_tir_pipeline; its finalization passes are TVM's.
"""

from __future__ import annotations

from ..._tvm import tvm

NAME = "tvmopt_cpu"


def _lowering_passes(config) -> list:
    """s_tir's list (tvm/s_tir/pipeline.py), in its order, reading the same config keys, less
    its GPU-only options (async copy, ldg32)."""
    s_tir, tirx = tvm.s_tir.transform, tvm.tirx.transform
    passes = [s_tir.CanonicalizeLoop(), s_tir.LowerCrossThreadReduction(),
              s_tir.LowerInitBlock(), s_tir.PlanAndUpdateBufferAllocationLocation(),
              s_tir.ConvertBlocksToOpaque(), s_tir.LiftThreadBinding(),
              s_tir.ManifestSharedMemoryLocalStage(), s_tir.CompactBufferAllocation(),
              s_tir.LowerAutoCopy(), s_tir.UnifyThreadBinding(), s_tir.LowerMatchBuffer(),
              s_tir.StmtSimplify(), s_tir.InjectPermutedLayout(), s_tir.AnnotateIrregularLoop(),
              s_tir.InjectSoftwarePipeline(), s_tir.TransformMmaBufferLayout(),
              s_tir.LowerOpaqueBlock(), tirx.FlattenBuffer(), tirx.BF16ComputeLegalize(),
              tirx.NarrowDataType(32), s_tir.LoopPartition(),
              tirx.StmtSimplify(),  # ours: what LoopPartition proved, folded before vectorizing
              tirx.VectorizeLoop(not bool(config.get("tirx.disable_vectorize", False))),
              s_tir.InjectVirtualThread(), s_tir.InjectDoubleBuffer()]  # fmt: skip
    if not bool(config.get("tirx.disable_storage_rewrite", False)):
        passes.append(tirx.StorageRewrite())
    passes += [s_tir.HoistIfThenElse(), tirx.UnrollLoop(), s_tir.RenormalizeSplitPattern(),
               tirx.StmtSimplify(), tirx.RemoveNoOp(), s_tir.RewriteUnsafeSelect()]  # fmt: skip
    if bool(config.get("tirx.instrument_bound_checkers", False)):
        passes.append(s_tir.InstrumentBoundCheckers())
    if not bool(config.get("tirx.disable_cse_tir", False)):
        passes.append(tirx.CommonSubexprElim())
    if bool(config.get("tirx.instrument_lwp", False)):
        passes.append(s_tir.InstrumentProfileIntrinsics())
    return passes + _finishing_passes()


def _finishing_passes() -> list:
    s_tir, tirx = tvm.s_tir.transform, tvm.tirx.transform
    return [tirx.FP8ComputeLegalize(), s_tir.VerifyVTCMLimit(), s_tir.LowerVtcmAlloc(),
            tirx.VerifyMemory(), tirx.AnnotateEntryFunc(), s_tir.ThreadSync("shared"),
            s_tir.ThreadSync("shared.dyn"), s_tir.ThreadSync("warp"), s_tir.InferFragment(),
            s_tir.LowerThreadAllreduce(), s_tir.MergeSharedMemoryAllocations(),
            tirx.SplitHostDevice(), tirx.MakePackedAPI(), tirx.FP8StorageLegalize(),
            tirx.BF16StorageLegalize()]  # fmt: skip


def cpu_tir_pipeline():
    """The factory register_tir_pipeline takes: (lowering pass, host and device finalizers)."""
    from tvm.s_tir import pipeline as s_tir_pipeline

    @tvm.transform.module_pass(opt_level=0, name="tvmopt.CPUTIRPipeline")
    def lowering(mod, _ctx):
        config = tvm.transform.PassContext.current().config
        return tvm.ir.transform.Sequential(_lowering_passes(config))(mod)

    return (lowering, s_tir_pipeline.finalize_host_passes,
            s_tir_pipeline.finalize_device_passes)  # fmt: skip


def registered() -> str:
    """NAME, registered with TVM (idempotent): what tvm.compile's tir_pipeline takes."""
    tvm.tirx.compilation_pipeline.register_tir_pipeline(NAME, cpu_tir_pipeline)
    return NAME
