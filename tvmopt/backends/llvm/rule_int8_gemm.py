"""The int8 layer (kernel_int8_gemm.py): quantize, GEMM with VNNI, dequantize.

Each task owns a tile of output positions x L-channel blocks of the int32 accumulator (a vector
of the target's: cpu.py; panel_gemm.py); over the reduction, on AVX-512 VNNI, each step is one
vpdpbusd per (position, block): 4 uint8 broadcast against a packed 16x4 int8 weight block. The
accumulators stay in registers; the dequantizing epilogue is applied as the tile is written out.
On CPUs without VNNI (AVX2, NEON, or a generic target) the same loops are vectorized over the L
channels instead: correct everywhere, fast where VNNI is.
"""

from __future__ import annotations

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


def has_vnni(target) -> bool:
    """Whether the target has the 512-bit vpdpbusd our VNNI intrinsic (intrin_vnni.py) uses."""
    return cpu_of(target).isa.int8_dot == "vpdpbusd"


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
            vnni=_vnni_applies(sch, gemm, target),
            channels_first=channels_first,
        )
        return True


def _vnni_applies(sch, gemm, target) -> bool:
    """vpdpbusd's operands: uint8 activations, blocks of 16 channels x 4."""
    lanes = int(sch.get(gemm).iter_vars[4].dom.extent)
    return has_vnni(target) and lanes == 16 and _activation_dtype(sch, gemm) == "uint8"


def _activation_dtype(sch, gemm) -> str:
    """uint8 (vpdpbusd's operand), or int8 in a kernel built for CUDA's dp4a
    (kernel_int8_gemm.py), which runs here on the vectorized loops: how its numerics are tested
    without a GPU."""
    reads = [r.source for r in sch.get(gemm).reads]
    return str(next(b.dtype for b in reads if len(b.shape) == 4))  # NHWC; the weight is 6-D


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
