"""The VTA hardware configuration every other part reads: widths, block size, buffer sizes and
clock (defaults: apache/tvm-vta's vta_config.json, the Pynq-Z1 build)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from ...errors import OptionError


@dataclass(frozen=True)
class VTAConfig:
    """Sizes are log2, as in vta_config.json; everything else is derived."""

    log_inp_width: int = 3  # int8 inputs
    log_wgt_width: int = 3  # int8 weights
    log_acc_width: int = 5  # int32 accumulators
    log_batch: int = 0
    log_block: int = 4  # 16x16 GEMM core
    log_uop_buff_size: int = 15  # bytes: 32 KiB
    log_inp_buff_size: int = 15  # 32 KiB
    log_wgt_buff_size: int = 18  # 256 KiB
    log_acc_buff_size: int = 17  # 128 KiB
    clock_mhz: float = 100.0
    bus_bytes: int = 8  # 64-bit AXI

    def __post_init__(self):
        if (self.log_inp_width, self.log_wgt_width, self.log_acc_width) != (3, 3, 5):
            raise OptionError("VTA here computes int8 x int8 -> int32 (log widths 3, 3, 5)")
        if self.log_batch != 0:
            raise OptionError("VTA here runs batch 1 (log_batch 0)")
        if not 1 <= self.log_block <= 6:
            raise OptionError(f"log_block must be 1..6 (blocks of 2..64), got {self.log_block}")
        for name in ("uop", "inp", "wgt", "acc"):
            if self.depth(name) < 1:
                raise OptionError(f"the {name} buffer holds no element at log size "
                                  f"{getattr(self, f'log_{name}_buff_size')}")  # fmt: skip

    @property
    def block(self) -> int:
        return 1 << self.log_block

    @cached_property
    def elem_bytes(self) -> dict[str, int]:
        """Bytes of one element of each on-chip buffer (one DRAM element of each memory type)."""
        b = self.block
        return {"uop": 4, "inp": b, "wgt": b * b, "acc": 4 * b, "out": b, "acc8": b}

    def depth(self, buffer: str) -> int:
        size = 1 << getattr(self, f"log_{buffer}_buff_size")
        return size // self.elem_bytes[buffer]

    def index_bits(self, buffer: str) -> int:
        return max(self.depth(buffer) - 1, 1).bit_length()

    @property
    def peak_gops(self) -> float:
        return 2 * self.block * self.block * self.clock_mhz / 1e3


DEFAULT = VTAConfig()
