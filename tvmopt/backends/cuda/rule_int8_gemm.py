"""The int8 layer on NVIDIA GPUs (backends/llvm/kernel_int8_gemm.py, built `signed`), on dp4a.

dlight's Matmul rule reads our GEMM as C[S, I, J] += A[S, I, K] * B[S, J, K] (I: output
positions, J: output channels, K: the window taps times the input channels), and gives it a
tiling that multiplies one byte at a time. (Layers with every extent over 64 it hands to its int8
tensor-core rule, whose code TVM 0.27 fails to generate for ours: "fragment_info_" on
ResNet-50.) This rule keeps the normalization and the shape of that tiling with dp4a at its core:
the block fills shared memory with tiles of A and B cooperatively, 4 bytes per load; each thread
owns a 4x4 tile of positions x channels in registers and, per step of the reduction, loads one
32-bit word per row of A and per column of B from shared memory into registers, then issues 16
dp4a (4 int8 of A times 4 of B, summed into int32; sm_61 and later).
"""

from __future__ import annotations

from dataclasses import dataclass

from tvm import s_tir
from tvm.s_tir.dlight.analysis import get_root_block
from tvm.s_tir.dlight.gpu.base import GPUScheduleRule
from tvm.s_tir.dlight.gpu.matmul import (
    auto_inline_consumer_chain,
    auto_inline_producers,
    check_sm_version,
    get_index_map,
    get_reduction_blocks,
)

from ..llvm.kernel_int8_gemm import DEPTH, GEMM
from .intrin_dp4a import DP4A_LOCAL_INTRIN, register_dp4a

DP4A_ARCH = 61  # the first architecture with dp4a
UNROLL_STEPS = 256


@dataclass(frozen=True)
class Dp4aTiles:
    """A thread block of threads_y x threads_x threads, each owning rows x cols outputs, over
    steps x 4 of the reduction per fill of shared memory."""

    threads_y: int = 16
    threads_x: int = 8
    rows: int = 4
    cols: int = 4
    steps: int = 4


class Int8Gemm(GPUScheduleRule):
    def __init__(self, tiles: Dp4aTiles = Dp4aTiles()):
        self.tiles = tiles

    def apply(self, func, target, tunable):
        if not self.is_target_available(target) or not _is_int8_layer(func):
            return None
        if check_sm_version(str(target.attrs.get("arch", ""))) < DP4A_ARCH:
            return None  # no dp4a: dlight's generic tiling (the next rule) takes it
        return schedule_dp4a(s_tir.Schedule(func), self.tiles)


def _is_int8_layer(func) -> bool:
    """A function holding our GEMM block, in a shape dlight reads as a matmul (not one with a
    single row: dlight's GEMV rules take it)."""
    sch = s_tir.Schedule(func)
    blocks = {sch.get(b).name_hint: b for b in sch.get_child_blocks(get_root_block(sch))}
    return GEMM in blocks and get_index_map(sch.get(blocks[GEMM])) is not None


def schedule_dp4a(sch, tiles: Dp4aTiles):
    """dlight's normalization to C[S, I, J] += A[S, I, K] * B[S, J, K], then the dp4a tiling."""
    gemm = get_reduction_blocks(sch, sch.get_child_blocks(get_root_block(sch)))[0]
    _as_batched_matmul(sch, gemm)
    tx, ko, ks, k4 = _tile(sch, gemm, tiles)
    accumulator = sch.cache_write(gemm, 0, "local")
    sch.reverse_compute_at(accumulator, tx, preserve_unit_loops=True)
    for operand in (0, 1):
        _fetch_to_shared(sch, gemm, operand, ko, tiles)
    for operand in (0, 1):  # the thread's rows of A and columns of B, one word each, per step
        registers = sch.cache_read(gemm, operand, "local")
        sch.compute_at(registers, ks, preserve_unit_loops=True)
        sch.vectorize(sch.get_loops(registers)[-1])
    auto_inline_consumer_chain(sch, accumulator)
    sch.decompose_reduction(gemm, ko)
    register_dp4a()
    sch.tensorize(k4, DP4A_LOCAL_INTRIN)
    return sch


def _tile(sch, gemm, tiles: Dp4aTiles):
    """Blocks and threads over I x J, each thread's tile innermost but for the 4 bytes of one
    dp4a: (the thread loop, the shared-memory step, the register step, the dp4a loop)."""
    sch.pad_einsum(gemm, [1, tiles.threads_y * tiles.rows, tiles.threads_x * tiles.cols,
                          tiles.steps * DEPTH])  # fmt: skip
    batch, i, j, k = sch.get_loops(gemm)
    by, ty, ii = sch.split(i, [None, tiles.threads_y, tiles.rows])
    bx, tx, ji = sch.split(j, [None, tiles.threads_x, tiles.cols])
    ko, ks, k4 = sch.split(k, [None, tiles.steps, DEPTH])
    sch.reorder(by, bx, ty, tx, ko, ks, ii, ji, k4)
    sch.bind(sch.fuse(batch, by), "blockIdx.y")
    sch.bind(bx, "blockIdx.x")
    sch.bind(ty, "threadIdx.y")
    sch.bind(tx, "threadIdx.x")
    # unrolled, the register tile's indices are constants: no local-memory array (as dlight)
    sch.annotate(tx, ann_key="pragma_auto_unroll_max_step", ann_val=UNROLL_STEPS)
    sch.annotate(tx, ann_key="pragma_unroll_explicit", ann_val=1)
    return tx, ko, ks, k4


def _as_batched_matmul(sch, gemm) -> None:
    a, b, c = (sch.reindex(gemm, side) for side in (("read", 0), ("read", 1), ("write", 0)))
    matmul_map, a_map, b_map, c_map = get_index_map(sch.get(gemm))  # after the reindexing
    sch.transform_layout(a, ("write", 0), a_map)
    sch.transform_layout(b, ("write", 0), b_map)
    sch.transform_layout(c, ("read", 0), c_map)
    sch.transform_block_layout(gemm, matmul_map)


def _fetch_to_shared(sch, gemm, operand: int, ko, tiles: Dp4aTiles) -> None:
    """The operand's tile for one `ko` step, loaded by the whole block 4 bytes at a time; its
    producers (the quantization of A, the reindexing) run inside the load."""
    block = sch.cache_read(gemm, operand, "shared")
    count = len(sch.get_loops(block))
    sch.compute_at(block, ko, preserve_unit_loops=True)
    loops = sch.get_loops(block)[-count:]
    ty, tx, _, vector = sch.split(sch.fuse(*loops),
                                  [tiles.threads_y, tiles.threads_x, None, DEPTH])  # fmt: skip
    sch.vectorize(vector)
    sch.bind(ty, "threadIdx.y")
    sch.bind(tx, "threadIdx.x")
    # rows padded by 4 bytes against bank conflicts, and still 4-byte aligned for dp4a's loads
    sch.storage_align(block, 0, axis=1, factor=8 * DEPTH, offset=DEPTH)
    auto_inline_producers(sch, block)
