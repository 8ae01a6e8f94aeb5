"""Running offloaded layers: `tvmopt.vta.conv2d`, the packed function a partitioned model calls.

The VM passes the layer's int8 input (1, C, H, W), the program compiled for it (instruction
stream and DRAM image as uint8 constants), a few integers saying where the input and output
live in that image, and the output tensor to fill. The input is packed into NCHW1n16c in a copy
of the image, the simulator runs the program, and the output is unpacked into (1, O, H', W').
Each run's counters are kept (`last_runs`) for reports.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import tvm_ffi

from .config import VTAConfig
from .isa import decode_stream
from .simulator import Counters, Simulator

FUNCTION = "tvmopt.vta.conv2d"
# meta: the configuration's sizes, the layer's shape, where x and y live in the image, its index
CONFIG_FIELDS = ("log_block", "log_uop_buff_size", "log_inp_buff_size", "log_wgt_buff_size",
                 "log_acc_buff_size")  # fmt: skip
META_FIELDS = (*CONFIG_FIELDS, "channels", "height", "width", "out_channels", "out_height",
               "out_width", "x_offset", "y_offset", "layer")  # fmt: skip
last_runs: deque[tuple[int, Counters]] = deque(maxlen=4096)  # (layer index, counters)


def pack_input(x: np.ndarray, block: int) -> np.ndarray:
    """(C, H, W) int8 -> (C/B, H, W, B), channels zero-padded to whole blocks."""
    channels, height, width = x.shape
    padded = np.zeros((-(-channels // block) * block, height, width), np.int8)
    padded[:channels] = x
    return padded.reshape(-1, block, height, width).transpose(0, 2, 3, 1)


def unpack_output(y: np.ndarray, channels: int) -> np.ndarray:
    """(O/B, H', W', B) -> (O, H', W')."""
    blocks, height, width, block = y.shape
    return y.transpose(0, 3, 1, 2).reshape(blocks * block, height, width)[:channels]


def run_conv2d(x, insns, dram, meta, out) -> None:
    m = dict(zip(META_FIELDS, meta.numpy().tolist(), strict=True))
    config = VTAConfig(**{name: m[name] for name in CONFIG_FIELDS})
    image = dram.numpy().copy()
    packed = pack_input(x.numpy()[0], config.block).reshape(-1).view(np.uint8)
    image[m["x_offset"] : m["x_offset"] + packed.size] = packed
    counters = Simulator(image, config).run(decode_stream(insns.numpy().tobytes(), config))
    last_runs.append((m["layer"], counters))
    block = config.block
    size = -(-m["out_channels"] // block) * m["out_height"] * m["out_width"] * block
    y = image[m["y_offset"] : m["y_offset"] + size].view(np.int8)
    y = y.reshape(-1, m["out_height"], m["out_width"], block)
    out.copyfrom(np.ascontiguousarray(unpack_output(y, m["out_channels"])[None]))


def register() -> None:
    """Make the function callable from compiled models in this process (idempotent)."""
    if tvm_ffi.get_global_func(FUNCTION, allow_missing=True) is None:
        tvm_ffi.register_global_func(FUNCTION, run_conv2d)
