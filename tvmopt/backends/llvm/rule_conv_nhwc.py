"""The float32 channels-last conv (kernel_conv_nhwc.py): padding materialized, then the panel
GEMM (panel_gemm.py) with the layer's bias, residual and activation applied as each register
tile is written out."""

from __future__ import annotations

from .kernel_conv_nhwc import GEMM
from .panel_gemm import DEFAULT_TILES, PanelTiles, schedule_panel_gemm
from .schedule_util import CPURule, padded_anchor


class Conv2dNHWC(CPURule):
    def __init__(self, tiles: PanelTiles = DEFAULT_TILES, sample: bool = False):
        self.tiles = tiles
        self.sample = sample

    def schedule(self, sch, target) -> bool:
        found = padded_anchor(sch, GEMM, target)
        if found is None:
            return False
        schedule_panel_gemm(sch, *found, self.tiles, self.sample, target)
        return True
