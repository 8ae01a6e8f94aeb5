"""The int8 layer (kernel_int8_gemm.py): quantize, GEMM on the ISA's int8 step, dequantize.

Each task owns a tile of output positions x L-channel blocks of the int32 accumulator (a vector
of the target's: cpu.py; panel_gemm.py); over the reduction, on AVX-512 VNNI, each step is one
vpdpbusd per (position, block): 4 uint8 broadcast against a packed 16x4 int8 weight block. The
accumulators stay in registers; the dequantizing epilogue is applied as the tile is written out.
Each ISA has its own steps (cpu.py's INT8_STEPS: vpdpbusd, vpmaddubsw, vpmaddwd, sdot). On CPUs
with none (SSE4, plain NEON, generic) the same loops are vectorized over the L channels instead:
correct, but slower than float32, so calibrated quantization leaves those layers float32 there.
"""

from __future__ import annotations

import math

from .cpu import cpu_of
from .kernel_int8_gemm import DEQUANTIZE, DEQUANTIZE_NCHW, GEMM, QUANTIZE
from .panel_gemm import DEFAULT_TILES, PanelTiles, schedule_panel_gemm
from .schedule_util import (
    CPURule,
    block_named,
    inline_epilogue,
    inline_prologue,
    parallel_rows_vector_inner,
    vector_lanes,
)


def int8_step(sch, gemm, target):
    """The target's int8 step (cpu.py, intrin_int8.py) whose shape the GEMM's blocks are: L x D
    weights of its dtype, activations of its dtype; else None (vectorized loops). The weight's
    packing chose it (cpu.py's int8_block)."""
    block = sch.get(gemm)
    # iter vars: n, i, j, no, ni, rh, rw, ko, then the step's: ki, or kp and ki in parts
    iters = [int(iv.dom.extent) for iv in block.iter_vars]
    lanes, step_axes = iters[4], iters[8:]
    parts = step_axes[0] if len(step_axes) == 2 else 1
    shape = (lanes, math.prod(step_axes), parts, _operand_dtype(sch, gemm, "weight"),
             _operand_dtype(sch, gemm, "activation"))  # fmt: skip
    steps = cpu_of(target).int8_steps
    return next(
        (s.name for s in steps if (s.lanes, s.depth, s.parts, s.weight, s.activation) == shape),
        None,
    )


class Int8Gemm(CPURule):
    def __init__(self, tiles: PanelTiles = DEFAULT_TILES, sample: bool = False):
        self.tiles = tiles
        self.sample = sample

    def schedule(self, sch, target) -> bool:
        layer = int8_layer(sch, GEMM, target)
        if layer is None:
            return False
        gemm, epilogue, channels_first = layer
        schedule_panel_gemm(
            sch,
            gemm,
            epilogue,
            self.tiles,
            self.sample,
            target,
            intrinsic=int8_step(sch, gemm, target),
            channels_first=channels_first,
        )
        return True


def _operand_dtype(sch, gemm, operand: str) -> str:
    """The dtype of the GEMM's "activation" (NHWC, 4 dims; int8 in a kernel built for CUDA's
    dp4a, which runs here on the vectorized loops: how its numerics are tested without a GPU)
    or packed "weight" (6 dims, 7 in parts)."""
    reads = [r.source for r in sch.get(gemm).reads]
    ranks = {len(b.shape) for b in reads}
    rank = 4 if operand == "activation" else max(ranks)
    return str(next(b.dtype for b in reads if len(b.shape) == rank))


def int8_layer(sch, core: str, target):
    """An int8 layer's blocks, its prologue and quantize scheduled: (the core block named `core`,
    the epilogue, whether it writes NCHW), or None for another function. A uint8 input read in
    place has no quantize block (kernels.quantized_input)."""
    core_block = block_named(sch, (core,))
    dequantize = block_named(sch, (DEQUANTIZE, DEQUANTIZE_NCHW))
    if core_block is None or dequantize is None:
        return None
    channels_first = sch.get(dequantize).name_hint == DEQUANTIZE_NCHW
    quantize = block_named(sch, (QUANTIZE,))
    inline_prologue(sch, core_block if quantize is None else quantize)
    if quantize is not None:
        parallel_rows_vector_inner(sch, quantize, vector_lanes(target))
    # FuseOps may have appended the layer's bias, residual and activation: one epilogue
    return core_block, inline_epilogue(sch, core_block), channels_first
