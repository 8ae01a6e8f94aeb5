"""The int8 depthwise conv (kernel_int8_depthwise.py): quantize, taps, dequantize, tiled
as the float32 one is (rule_depthwise_nhwc.py): a register tile of positions x 16 channels of
int32 accumulators, the taps unrolled around it, dequantized with the layer's activation and
requantization (FuseOps' epilogue) as it is written out."""

from __future__ import annotations

from .kernel_int8_depthwise import DEPTHWISE
from .rule_depthwise_nhwc import tile_depthwise_taps
from .rule_int8_gemm import int8_layer
from .schedule_util import CPURule


class Int8Depthwise(CPURule):
    def schedule(self, sch, target) -> bool:
        layer = int8_layer(sch, DEPTHWISE, target)
        if layer is None:
            return False
        taps, epilogue, channels_first = layer
        tile_depthwise_taps(sch, taps, epilogue, channels_first, target)
        return True
