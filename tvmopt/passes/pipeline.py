"""The target-neutral graph passes: one flat, named list per opt level, read top to bottom.

Each backend's pipeline (backends/<name>/pipeline.py) starts from these lists, adds the passes
that shape work for its own kernels (the CPU's channels-last convs and packed weights, say) and
then lowers. -O0 lowers the imported graph as it is: one kernel per op, nothing folded or fused.
The helpers below assemble named lists into the one Pass that tvm.compile runs.
"""

from __future__ import annotations

from tvm import relax

from .._tvm import tvm
from .clip_as_min_max import ClipAsMinMax
from .fold_constants import FoldConstants
from .fold_scale_shift import FoldScaleShift
from .recognize_activations import RecognizeActivations
from .simplify import Simplify
from .spans import keeping_spans

DEFAULT_OPT_LEVEL = 3
T = relax.transform

O1 = [
    ("canonicalize", T.CanonicalizeBindings),  # tuple-of-consts[i] -> the const; x = y -> y
    ("fold_constants", FoldConstants),  # numpy-evaluated constants, inlined into their uses
    ("simplify", lambda: Simplify),  # x*1, no-op reshapes, layout chains
    ("dead_code", T.DeadCodeElimination),  # bindings nobody reads
]
DECOMPOSE = [
    # batch_norm -> (x-m)/s*g+b, the arithmetic named after the batch norm node (spans.py)
    ("decompose_batch_norm", lambda: keeping_spans(T.DecomposeOpsForInference())),
]
INTO_WEIGHTS = [
    ("fold_constants_2", FoldConstants),  # the decomposed constants
    ("fold_scale_shift", lambda: FoldScaleShift),  # batch norm and scales into weights and bias
    ("merge_duplicates", T.EliminateCommonSubexpr),  # one copy of each identical expression
    ("dead_code_2", T.DeadCodeElimination),
]
O2 = O1 + DECOMPOSE + INTO_WEIGHTS
# int8 quantization (passes/quantize) runs after these, on folded weights; a backend's own -O3
# passes (weight packing, say) follow it
O3 = O1 + DECOMPOSE + [
    # before fold_scale_shift, which would turn GELU's division by sqrt(2) into a product
    ("recognize_activations", lambda: RecognizeActivations),  # erf spelled out -> gelu
] + INTO_WEIGHTS  # fmt: skip
GRAPH_PASSES = {0: [], 1: O1, 2: O2, 3: O3}
OPT_LEVELS = tuple(GRAPH_PASSES)

# fp16 storage: convs and matmuls take float16 operands and accumulate in float32; the model's
# inputs and outputs stay float32
FP16 = [
    ("clip_as_min_max", lambda: ClipAsMinMax),  # ToMixedPrecision cannot cast clip's bounds
    ("mixed_precision", lambda: T.ToMixedPrecision(out_dtype="float32")),
    ("fold_fp16_weights", FoldConstants),  # astype(weight) -> a float16 weight
]


def instantiate(graph: list) -> list[tuple[str, tvm.transform.Pass]]:
    """(name, pass factory) pairs -> (name, pass) pairs."""
    return [(name, make()) for name, make in graph]


def named(passes) -> list[tuple[str, tvm.transform.Pass]]:
    """TVM's own pass lists as (name, pass) pairs."""
    return [(p.info.name, p) for p in passes]


def apply_database(database) -> tvm.transform.Pass:
    """Schedule every kernel `database` has a record of with its best record; the count of
    kernels it took goes to `database.applied`."""

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


def sequential(name: str, passes, target) -> tvm.transform.Pass:
    """One pass running the named `passes` in order, under `target`."""

    @tvm.transform.module_pass(opt_level=0, name=name)
    def pipeline(mod, ctx):
        with target:
            return tvm.transform.Sequential([p for _, p in passes])(mod)

    return pipeline
