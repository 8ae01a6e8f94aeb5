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
from .lower_conv import pack_activation, unpack_activation
from .simulator import Counters, Simulator

FUNCTION = "tvmopt.vta.conv2d"
# meta: the configuration's sizes, the layer's shape, where x and y live in the image, its index
CONFIG_FIELDS = ("log_block", "log_uop_buff_size", "log_inp_buff_size", "log_wgt_buff_size",
                 "log_acc_buff_size")  # fmt: skip
META_FIELDS = (*CONFIG_FIELDS, "channels", "height", "width", "out_channels", "out_height",
               "out_width", "x_offset", "y_offset", "layer")  # fmt: skip
last_runs: deque[tuple[int, Counters]] = deque(maxlen=4096)  # (layer index, counters)


def run_conv2d(x, insns, dram, meta, out) -> None:
    m = dict(zip(META_FIELDS, meta.numpy().tolist(), strict=True))
    config = VTAConfig(**{name: m[name] for name in CONFIG_FIELDS})
    image = dram.numpy().copy()
    packed = pack_activation(x.numpy()[0], config.block).reshape(-1).view(np.uint8)
    image[m["x_offset"] : m["x_offset"] + packed.size] = packed
    counters = Simulator(image, config).run(decode_stream(insns.numpy().tobytes(), config))
    last_runs.append((m["layer"], counters))
    block = config.block
    size = -(-m["out_channels"] // block) * m["out_height"] * m["out_width"] * block
    y = image[m["y_offset"] : m["y_offset"] + size].view(np.int8)
    y = y.reshape(-1, m["out_height"], m["out_width"], block)
    out.copyfrom(np.ascontiguousarray(unpack_activation(y, m["out_channels"])[None]))


def register() -> None:
    """Make the function callable from compiled models in this process (idempotent)."""
    if tvm_ffi.get_global_func(FUNCTION, allow_missing=True) is None:
        tvm_ffi.register_global_func(FUNCTION, run_conv2d)
