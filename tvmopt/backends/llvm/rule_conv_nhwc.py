"""The float32 channels-last conv (passes/conv_nhwc.py): padding materialized, then the panel
GEMM (panel_gemm.py) with the layer's bias, residual and activation applied as each register
tile is written out."""

from __future__ import annotations

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
        schedule_panel_gemm(sch, gemm, epilogue, self.tiles, self.sample)
        return True
