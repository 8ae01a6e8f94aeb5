"""Building VTA programs: a DRAM image with named regions, micro-op kernels, and instructions
whose dependency tokens follow the VTA runtime's convention (reference section 3):

- `pop(src, dst)` marks the next instruction `dst` emits as waiting for a token from `src`;
- `push(src, dst)` marks `src`'s latest instruction, or emits a no-op on `src` that carries it.

`finish()` adds the launch epilogue (everything drains into compute, then FINISH) and returns a
Program: the stream, the DRAM image and where each tensor lives.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ...errors import VTAError
from .config import DEFAULT, VTAConfig
from .isa import Finish, Insn, Load, Mem, Store, Uop, elem_bytes, encode_uop
from .simulator import STAGES, stage_of

NOPS = {"load": Load(memory=Mem.INP), "compute": Load(memory=Mem.UOP), "store": Store()}


@dataclass
class Region:
    """A tensor in DRAM: its first element (in units of `memory`'s elements) and element count."""

    memory: Mem
    base: int
    count: int


@dataclass
class Program:
    insns: list[Insn]
    dram: np.ndarray  # uint8
    regions: dict[str, Region]
    config: VTAConfig = DEFAULT

    def read(self, name: str, dram: np.ndarray | None = None) -> np.ndarray:
        """Region `name` of `dram` (default: the program's image) as int8 elements (count, B)."""
        region = self.regions[name]
        size = elem_bytes(self.config, region.memory)
        raw = (self.dram if dram is None else dram)[
            region.base * size : (region.base + region.count) * size
        ]
        return raw.view(np.int8).reshape(region.count, -1)


class ProgramBuilder:
    def __init__(self, config: VTAConfig = DEFAULT):
        self.config = config
        self.insns: list[Insn] = []
        self.chunks: list[bytes] = []
        self.size = 0
        self.regions: dict[str, Region] = {}
        self.pending_pops = {stage: set() for stage in STAGES}
        self.uop_cursor = 0
        self.resident: dict[tuple[Uop, ...], tuple[int, int]] = {}  # kernels in the uop buffer

    # DRAM

    def place(self, name: str, memory: Mem, data: np.ndarray) -> Region:
        """Copy `data` (whole elements of `memory`) into the image, aligned to its element size."""
        size = elem_bytes(self.config, memory)
        raw = np.ascontiguousarray(data).view(np.uint8).reshape(-1)
        if raw.size % size:
            raise VTAError(f"{name}: {raw.size} bytes are not whole {size}-byte elements")
        return self._append(name, memory, raw.tobytes(), size)

    def reserve(self, name: str, memory: Mem, count: int) -> Region:
        size = elem_bytes(self.config, memory)
        return self._append(name, memory, bytes(count * size), size)

    def _append(self, name: str, memory: Mem, data: bytes, size: int) -> Region:
        padding = -self.size % max(size, 64)
        self.chunks.append(bytes(padding) + data)
        self.size += padding
        region = Region(memory, self.size // size, len(data) // size)
        self.size += len(data)
        self.regions[name] = region
        return region

    # micro-ops

    def uop_kernel(self, name: str, uops: list[Uop]) -> tuple[int, int]:
        """Place `uops` in DRAM, load them into the micro-op buffer (compute module), and return
        their [begin, end) there; a kernel still in the buffer is not loaded again."""
        key = tuple(uops)
        if key in self.resident:
            return self.resident[key]
        depth = self.config.depth("uop")
        if self.uop_cursor + len(uops) > depth:
            self.uop_cursor = 0  # the buffer is a ring; earlier kernels are done by then
            self.resident.clear()
        if len(uops) > depth:
            raise VTAError(f"{name}: {len(uops)} micro-ops exceed the {depth}-entry buffer")
        words = np.array([encode_uop(u, self.config) for u in uops], np.uint32)
        region = self.place(name, Mem.UOP, words)
        bgn = self.uop_cursor
        self.emit(Load(memory=Mem.UOP, sram_base=bgn, dram_base=region.base, y_size=1,
                       x_size=len(uops), x_stride=len(uops)))  # fmt: skip
        self.uop_cursor += len(uops)
        self.resident[key] = (bgn, bgn + len(uops))
        return bgn, bgn + len(uops)

    # instructions and tokens

    def emit(self, insn: Insn) -> None:
        stage = stage_of(insn)
        flags = {f"pop_{direction}": True for direction in self.pending_pops[stage]}
        self.pending_pops[stage].clear()
        self.insns.append(dataclasses.replace(insn, **flags))

    def pop(self, src: str, dst: str) -> None:
        """`dst`'s next instruction waits for a token from `src`."""
        self.pending_pops[dst].add(_direction(dst, src))

    def push(self, src: str, dst: str) -> None:
        """`src` signals `dst` once its latest instruction is done."""
        flag = f"push_{_direction(src, dst)}"
        last = self.insns[-1] if self.insns else None
        if self.pending_pops[src] or last is None or stage_of(last) != src or getattr(last, flag):
            self.emit(NOPS[src])
        self.insns[-1] = dataclasses.replace(self.insns[-1], **{flag: True})

    def drain(self, src: str, dst: str, count: int) -> None:
        """`dst` takes `count` tokens from `src` on no-ops: those pushed for buffer halves that
        no later step reuses, which must still be taken before the launch ends."""
        for _ in range(count):
            self.pop(src, dst)
            self.emit(NOPS[dst])

    def finish(self) -> Program:
        """The launch epilogue: store and load hand their last tokens to compute, which takes
        them on a no-op, then FINISH."""
        self.push("store", "compute")
        self.push("load", "compute")
        self.pop("store", "compute")
        self.pop("load", "compute")
        self.emit(NOPS["compute"])
        self.insns.append(Finish())
        dram = np.frombuffer(b"".join(self.chunks), np.uint8).copy()
        return Program(self.insns, dram, self.regions, self.config)


def _direction(stage: str, other: str) -> str:
    order = STAGES.index(other) - STAGES.index(stage)
    if abs(order) != 1:
        raise VTAError(f"{stage} and {other} are not neighbours; tokens pass between neighbours")
    return "next" if order > 0 else "prev"
