"""The float32 channels-last conv (passes/conv_nhwc.py): padding materialized, then the panel
GEMM (panel_gemm.py) with the layer's bias, residual and activation applied as each register
tile is written out."""

from __future__ import annotations

import math

from ...passes.conv_nhwc import GEMM, PAD
from .panel_gemm import DEFAULT_TILES, PanelTiles, schedule_panel_gemm
from .schedule_util import (
    CPURule,
    block_named,
    inline_epilogue,
    inline_prologue,
    materialize_padding,
    vector_lanes,
)

# below this, a weight stays in a core's L2 while positions stream past it (1 MiB on Zen 4, 2 MiB
# on Sapphire Rapids); above, panels go outermost so that each task's panel does
L2_BYTES = 1 << 20


class Conv2dNHWC(CPURule):
    def __init__(self, tiles: PanelTiles = DEFAULT_TILES, sample: bool = False):
        self.tiles = tiles
        self.sample = sample

    def schedule(self, sch, target) -> bool:
        gemm = block_named(sch, (GEMM,))
        if gemm is None:
            return False
        # FuseOps may have put element-wise producers ahead (the network input's transpose)
        pad = block_named(sch, (PAD,))
        inline_prologue(sch, gemm if pad is None else pad)
        materialize_padding(sch, vector_lanes(target))
        epilogue = inline_epilogue(sch, gemm)
        panels_outer = _weight_bytes(sch, gemm) > L2_BYTES
        schedule_panel_gemm(sch, gemm, epilogue, self.tiles, self.sample, panels_outer=panels_outer)
        return True


def _weight_bytes(sch, gemm) -> int:
    """The size of the packed weight, the GEMM's one 5-D operand."""
    block = sch.get(gemm)
    (weight,) = [r.source for r in block.reads if len(r.source.shape) == 5]
    return math.prod(int(d) for d in weight.shape) * weight.dtype.bits // 8
