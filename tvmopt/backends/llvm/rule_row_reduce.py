"""Row-wise normalizations (softmax, LayerNorm, RMSNorm): every reduction vectorized along its row.

A transformer's softmax and LayerNorm reduce along the innermost axis (a row of 128 scores, of 768
features) and then rewrite that row. The fallback parallelizes rows but leaves each reduction a
chain of scalar adds (float addition is not associative, so LLVM keeps the order) and leaves the
element-wise blocks between the reductions in separate passes: BERT-base's softmax over 12 x 128
x 128 took 1.8 ms a call on one Zen 4 core. Here, as TVM's dlight CPU Reduction rule does, all
blocks go under one parallel loop over rows; unlike it, each reduction is first split into a
vector of partial results (rfactor, the row summed lane by lane), which is then reduced once per
row. The sums come out in another order than a sequential loop's, as ONNX Runtime's vectorized
kernels' do.

A row of symbolic length (softmax over a sequence of n tokens) has no exact split: TVM's rfactor
refuses the split's predicate, and a predicated vector loop is scalarized. A softmax comes here
with its split already made (symbolic_softmax.py: partials over the row's whole vectors, which
this rule vectorizes along the lanes, and a short scalar tail); other reductions over a symbolic
row stay sequential. The element-wise blocks are split into whole vectors plus a remainder
(LoopPartition, asked by a hint on the vector loop's parent, peels the last partial vector off,
so the body is unpredicated vector code).
"""

from __future__ import annotations

import re

from tvm.s_tir.dlight.analysis import normalize_prim_func

from .schedule_util import (
    CPURule,
    Decline,
    extents,
    largest_divisor,
    root_blocks,
    vector_lanes,
    vector_split,
)
from .symbolic_loops import peeled_vectors
from .symbolic_softmax import LANE_BLOCKS, MIN_LANES, TAIL_BLOCKS

# element-wise work worth storing once rather than recomputing in each block that reads it
COSTLY = ("T.exp(", "T.exp2(", "T.log(", "T.tanh(", "T.erf(", "T.sigmoid(", "T.sqrt(", "T.rsqrt(",
          "T.pow(")  # fmt: skip
MAX_CHEAP_CALLS = 2
LITERAL = re.compile(r"T\.(u?int|float)\d+\(")  # typed constants as TVMScript prints them


class RowReduction(CPURule):
    def schedule(self, sch, target) -> bool:
        infos = normalize_prim_func(sch)
        if not _is_row_normalization(infos):
            return False
        rows = _leading_spatial(infos)
        if rows == 0:  # a block with no row axis: a scalar mean of a 1-D LayerNorm
            return False
        _inline_cheap_producers(sch, infos)
        infos = normalize_prim_func(sch)
        lanes = vector_lanes(target)
        reductions = [info.block_rv for info in infos if not info.is_injective()]
        partials = [_vector_partials(sch, block, lanes) for block in reductions]
        row = _parallel_rows(sch, infos[-1].block_rv, rows)
        for block in reversed(root_blocks(sch)[:-1]):
            if _writes_output(sch, block):  # TVM computes no output block at a loop
                _parallel_rows(sch, block, rows)
            else:
                sch.compute_at(block, row, preserve_unit_loops=True)
        for partial in partials:
            if partial is not None:
                _vectorize_partial(sch, partial)
        for block, partial in zip(reductions, partials, strict=True):
            if sch.get(block).name_hint in LANE_BLOCKS:
                _vectorize_lanes(sch, block)
            elif partial is None:  # a symbolic count, maybe 0 (n % lanes): init before the loop
                sch.decompose_reduction(block, sch.get_loops(block)[-1])
        for info in infos:
            if info.is_injective() and len(sch.get_loops(info.block_rv)) > 1:
                _vectorize_row(sch, info.block_rv, lanes)  # not the row loop itself
        return True


def _is_row_normalization(infos) -> bool:
    """Reductions and element-wise blocks, the last element-wise, each reduction over one
    innermost axis after its spatial ones."""
    if infos is None or len(infos) < 2 or not infos[-1].is_injective():
        return False
    reductions = [info.dom_kind() for info in infos if not info.is_injective()]
    return bool(reductions) and all(kind.rstrip("R") == kind[:-1] != "" for kind in reductions)


def _leading_spatial(infos) -> int:
    return min(len(kind) - len(kind.lstrip("S")) for kind in (i.dom_kind() for i in infos))


def _inline_cheap_producers(sch, infos) -> None:
    """Element-wise blocks before the last one (a residual add, the mask's add) computed where
    they are read, unless they are costly (softmax's exp: computed once, stored in the row, read
    twice) or the function returns what they write."""
    for info in infos[:-1]:
        if info.is_injective() and not _costly(sch.get(info.block_rv)):
            try:
                sch.compute_inline(info.block_rv)
            except Exception:  # noqa: BLE001 - TVM's schedule errors: it stays a block
                pass


def _costly(block) -> bool:
    """A transcendental function, or an expression of many calls (TOPI's fast_exp polynomial)."""
    value = str(block.body.value) if hasattr(block.body, "value") else str(block.body)
    calls = len(LITERAL.sub("", value).split("T.")) - 1  # T.int64(0): an index, no call
    return any(name in value for name in COSTLY) or calls > MAX_CHEAP_CALLS


def _vector_partials(sch, block, lanes: int):
    """Split the reduction's row loop by the largest divisor up to `lanes` and rfactor it:
    the new block sums the row into a vector of partial results, the old one adds those up.
    The vector is the innermost axis of the partials' buffer: contiguous, not a gather. None for
    a row of symbolic length: it stays a sequential sum."""
    loop = sch.get_loops(block)[-1]
    (extent,) = extents(sch, [loop])
    if extent is None or sch.get(block).name_hint in LANE_BLOCKS + TAIL_BLOCKS:
        return None  # symbolic_softmax.py's blocks: already split by the vector
    width = largest_divisor(extent, lanes)
    if width < MIN_LANES:
        raise Decline(f"a row of {extent} has no vector-wide divisor")
    _, inner = sch.split(loop, [None, width])
    return sch.rfactor(inner, factor_axis=len(sch.get(block).writes[0].source.shape))


def _writes_output(sch, block) -> bool:
    """Whether the block writes one of the function's outputs: a residual add whose sum a
    pre-LayerNorm transformer returns beside the LayerNorm of it (ViT's, GPT-2's x + f(x); not
    BERT's, whose sum only its LayerNorm reads). It runs as a row-parallel vector loop of its
    own, before the rows; these fell back to TVM's unscheduled code (ViT-B/16's add +
    LayerNorm over 197 x 768: about 1 ms a call on AVX2, one thread, loaded host)."""
    params = sch.mod["main"].params
    return any(region.source.same_as(param) for region in sch.get(block).writes for param in params)


def _parallel_rows(sch, block, rows: int):
    loops = sch.get_loops(block)[:rows]
    row = sch.fuse(*loops) if len(loops) > 1 else loops[0]
    sch.parallel(row)
    return row


def _vectorize_partial(sch, partial) -> None:
    """The partial sums' loops under the row are (lanes, unit loops, steps): steps outside,
    lanes inside and vectorized, the init split off and vectorized too."""
    loops = sch.get_loops(partial)
    lanes, steps = loops[-len(sch.get(partial).iter_vars)], loops[-1]
    sch.reorder(steps, lanes)
    sch.vectorize(lanes)
    init = sch.decompose_reduction(partial, steps)
    sch.vectorize(sch.get_loops(init)[-1])


def _vectorize_lanes(sch, block) -> None:
    """A symbolic row's partials in whole vectors (symbolic_softmax.py), under the row as
    (lanes, steps): steps outside, lanes inside and vectorized, their init split off."""
    lanes, steps = sch.get_loops(block)[-2:]
    sch.reorder(steps, lanes)
    sch.vectorize(lanes)
    init = sch.decompose_reduction(block, steps)
    sch.vectorize(sch.get_loops(init)[-1])


def _vectorize_row(sch, block, lanes: int) -> None:
    loop = sch.get_loops(block)[-1]
    (extent,) = extents(sch, [loop])
    if extent is None or (extent >= lanes and largest_divisor(extent, lanes) < MIN_LANES):
        peeled_vectors(sch, loop, lanes)  # whole vectors, then the last partial one
    elif extent >= 2:
        sch.vectorize(vector_split(sch, loop, lanes)[1])
