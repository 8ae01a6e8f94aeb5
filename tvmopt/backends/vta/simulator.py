"""A bit-exact VTA simulator with a cycle model.

The three modules (load, compute, store) each run their instructions in order and meet only
through four dependency-token FIFOs (depth 8), as on the hardware. The simulator runs whichever
module can start earliest: an instruction starts when its module is free and the tokens it pops
have been pushed; it pushes its tokens when it ends. Functional effects follow apache/tvm-vta's
fsim (reference section 4), vectorized with numpy; timing follows cycles.py. A stream that can
make no progress is a deadlock, reported with what each module waits for; tokens left at the end,
indices outside a buffer and malformed instructions are errors too. Nothing ever hangs.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ...errors import VTAError
from .config import DEFAULT, VTAConfig
from .cycles import CycleModel
from .isa import Alu, AluOp, Finish, Gemm, Insn, Load, LoopInsn, Mem, Store, elem_bytes, uop_bits

STAGES = ("load", "compute", "store")
FIFO_DEPTH = 8
# (stage, direction) -> the FIFO: load->compute l2g, compute->load g2l, ...
FIFOS = {("load", "next"): "l2g", ("compute", "prev"): "g2l", ("compute", "next"): "g2s",
         ("store", "prev"): "s2g"}  # fmt: skip
POPS = {("load", "next"): "g2l", ("compute", "prev"): "l2g", ("compute", "next"): "s2g",
        ("store", "prev"): "g2s"}  # fmt: skip


def stage_of(insn: Insn) -> str:
    if isinstance(insn, Store):
        return "store"
    if isinstance(insn, Load) and insn.memory in (Mem.INP, Mem.WGT):
        return "load"
    return "compute"


@dataclass
class Counters:
    """fsim's counters, plus the cycle model's per-module busy and stalled cycles."""

    inp_load_nbytes: int = 0
    wgt_load_nbytes: int = 0
    uop_load_nbytes: int = 0
    acc_load_nbytes: int = 0
    out_store_nbytes: int = 0
    gemm_counter: int = 0
    alu_counter: int = 0
    cycles: int = 0
    busy: dict = field(default_factory=lambda: dict.fromkeys(STAGES, 0))
    stalled: dict = field(default_factory=lambda: dict.fromkeys(STAGES, 0))

    @property
    def gemm_utilization(self) -> float:
        return self.gemm_counter / self.cycles if self.cycles else 0.0


class Simulator:
    """VTA's on-chip state and the DRAM it reads and writes (a flat uint8 array)."""

    def __init__(
        self, dram: np.ndarray, config: VTAConfig = DEFAULT, model: CycleModel | None = None
    ):
        self.config, self.model = config, model or CycleModel(config)
        self.dram = dram
        b = config.block
        self.sram = {
            Mem.UOP: np.zeros(config.depth("uop"), np.uint32),
            Mem.INP: np.zeros((config.depth("inp"), b), np.int8),
            Mem.WGT: np.zeros((config.depth("wgt"), b, b), np.int8),
            Mem.ACC: np.zeros((config.depth("acc"), b), np.int32),
        }

    def run(self, insns: list[Insn]) -> Counters:
        """Execute one launch (a stream ending in FINISH); return its counters."""
        if not insns or not isinstance(insns[-1], Finish):
            raise VTAError("the instruction stream does not end with FINISH")
        run = _Launch(self, insns)
        run.execute()
        return run.counters

    # functional effects, one method per instruction kind

    def load(self, insn: Load, counters: Counters) -> None:
        if insn.x_size == 0:
            return
        memory = Mem.ACC if insn.memory == Mem.ACC8 else insn.memory
        if memory not in self.sram:
            raise VTAError(f"LOAD into {insn.memory.name}, which cannot be loaded")
        rows, cols = (
            insn.y_pad_0 + insn.y_size + insn.y_pad_1,
            insn.x_pad_0 + insn.x_size + insn.x_pad_1,
        )
        _check_range(
            f"LOAD {insn.memory.name}", insn.sram_base, rows * cols, len(self.sram[memory])
        )
        tile = np.zeros((rows, cols, *self.sram[memory].shape[1:]), self.sram[memory].dtype)
        tile[
            insn.y_pad_0 : insn.y_pad_0 + insn.y_size, insn.x_pad_0 : insn.x_pad_0 + insn.x_size
        ] = self._dram_tile(insn)
        self.sram[memory][insn.sram_base : insn.sram_base + rows * cols] = tile.reshape(
            rows * cols, *tile.shape[2:]
        )
        _count_load(insn, self.config, counters)

    def _dram_tile(self, insn: Load) -> np.ndarray:
        """The y_size x x_size elements at dram_base (row pitch x_stride), as the buffer's type."""
        elem = elem_bytes(self.config, insn.memory)
        rows = insn.dram_base + np.arange(insn.y_size)[:, None] * insn.x_stride
        elements = rows + np.arange(insn.x_size)[None, :]
        raw = self._dram_bytes(elements, elem, f"LOAD {insn.memory.name}")
        b = self.config.block
        if insn.memory == Mem.UOP:
            return raw.view("<u4").reshape(insn.y_size, insn.x_size)
        if insn.memory == Mem.ACC:
            return raw.view("<i4").reshape(insn.y_size, insn.x_size, b)
        shape = (b, b) if insn.memory == Mem.WGT else (b,)
        return raw.view(np.int8).reshape(insn.y_size, insn.x_size, *shape)  # ACC8 widens on store

    def _dram_bytes(self, elements: np.ndarray, elem: int, what: str) -> np.ndarray:
        byte_index = elements[..., None] * elem + np.arange(elem)
        if elements.size and (elements.min() < 0 or byte_index.max() >= len(self.dram)):
            raise VTAError(f"{what} reads DRAM bytes outside the {len(self.dram)}-byte image")
        return np.ascontiguousarray(self.dram[byte_index])

    def store(self, insn: Store, counters: Counters) -> None:
        if insn.x_size == 0:
            return
        if (
            insn.memory != Mem.OUT
            or (insn.y_pad_0, insn.y_pad_1, insn.x_pad_0, insn.x_pad_1) != (0,) * 4
        ):
            raise VTAError("STORE writes OUT only, without padding")
        count = insn.y_size * insn.x_size
        _check_range("STORE", insn.sram_base, count, len(self.sram[Mem.ACC]))
        values = self.sram[Mem.ACC][insn.sram_base : insn.sram_base + count].astype(np.int8)
        rows = insn.dram_base + np.arange(insn.y_size)[:, None] * insn.x_stride
        elements = (rows + np.arange(insn.x_size)[None, :]).reshape(-1)
        b = self.config.block
        byte_index = elements[:, None] * b + np.arange(b)
        if byte_index.min() < 0 or byte_index.max() >= len(self.dram):
            raise VTAError(f"STORE writes DRAM bytes outside the {len(self.dram)}-byte image")
        self.dram[byte_index] = values.view(np.uint8)  # low 8 bits: truncation, no saturation
        counters.out_store_nbytes += count * b

    def gemm(self, insn: Gemm, counters: Counters) -> None:
        dst, src, wgt = self._indices(insn, with_weights=True)
        acc = self.sram[Mem.ACC]
        if insn.reset:
            acc[dst] = 0
            return
        products = np.einsum("nk,nok->no", self.sram[Mem.INP][src].astype(np.int32),
                             self.sram[Mem.WGT][wgt].astype(np.int32))  # fmt: skip
        total = acc.astype(np.int64)
        np.add.at(total, dst, products)
        acc[:] = total.astype(np.uint32).view(np.int32)  # wrap32: sums modulo 2**32
        counters.gemm_counter += len(dst)

    def alu(self, insn: Alu, counters: Counters) -> None:
        dst, src, _ = self._indices(insn, with_weights=False)
        acc = self.sram[Mem.ACC]
        clash = len(np.unique(dst)) < len(dst) or (
            not insn.use_imm and np.isin(src, dst[src != dst]).any()
        )
        if clash:  # later elements read earlier results: one tile at a time, as the hardware
            for a, s in zip(dst, src, strict=True):
                acc[a] = _alu(insn, acc[a], insn.imm if insn.use_imm else acc[s])
        else:
            acc[dst] = _alu(insn, acc[dst], insn.imm if insn.use_imm else acc[src])
        counters.alu_counter += len(dst)

    def _indices(self, insn: LoopInsn, with_weights: bool):
        """Every (dst, src, wgt) the loops visit, in execution order, range-checked."""
        fields = self._uop_fields(insn)
        buffers = {"dst": Mem.ACC, "src": Mem.INP if with_weights else Mem.ACC, "wgt": Mem.WGT}
        names = ("dst", "src", "wgt") if with_weights else ("dst", "src")
        indices = [self._loop_index(insn, name, fields[name], buffers[name]) for name in names]
        return tuple(indices) if with_weights else (*indices, None)

    def _uop_fields(self, insn: LoopInsn) -> dict[str, np.ndarray]:
        if not 0 <= insn.uop_bgn <= insn.uop_end <= len(self.sram[Mem.UOP]):
            raise VTAError(f"micro-ops [{insn.uop_bgn}, {insn.uop_end}) are outside the buffer")
        uops = self.sram[Mem.UOP][insn.uop_bgn : insn.uop_end].astype(np.int64)
        acc_bits, src_bits, wgt_bits = uop_bits(self.config)  # decode_uop, vectorized
        return {"dst": uops & (1 << acc_bits) - 1, "src": uops >> acc_bits & (1 << src_bits) - 1,
                "wgt": uops >> (acc_bits + src_bits) & (1 << wgt_bits) - 1}  # fmt: skip

    def _loop_index(self, insn: LoopInsn, name: str, base: np.ndarray, buffer: Mem) -> np.ndarray:
        i = np.arange(insn.iter_out)[:, None, None] * getattr(insn, f"{name}_factor_out")
        j = np.arange(insn.iter_in)[None, :, None] * getattr(insn, f"{name}_factor_in")
        index = (base[None, None, :] + i + j).reshape(-1)
        depth = len(self.sram[buffer])
        if index.size and index.max() >= depth:
            kind = type(insn).__name__.upper()
            raise VTAError(
                f"{kind} {name} index {index.max()} is outside {buffer.name} ({depth} deep)"
            )
        return index


def _alu(insn: Alu, x: np.ndarray, y) -> np.ndarray:
    x = x.astype(np.int64)
    y = np.asarray(y, np.int64)
    if insn.op == AluOp.MIN:
        result = np.minimum(x, y)
    elif insn.op == AluOp.MAX:
        result = np.maximum(x, y)
    elif insn.op == AluOp.ADD:
        result = x + y
    elif insn.op == AluOp.MUL:
        result = x * y
    else:  # SHR: arithmetic right shift; a negative amount shifts left
        result = np.where(y >= 0, x >> np.clip(y, 0, 63), x << np.clip(-y, 0, 63))
    return (result & 0xFFFFFFFF).astype(np.uint32).view(np.int32)


def _check_range(what: str, base: int, count: int, depth: int) -> None:
    if base + count > depth:
        raise VTAError(f"{what} writes elements [{base}, {base + count}) of a {depth}-deep buffer")


def _count_load(insn: Load, config: VTAConfig, counters: Counters) -> None:
    elements = insn.x_size * insn.y_size
    if insn.memory == Mem.INP:
        counters.inp_load_nbytes += elements * elem_bytes(config, Mem.INP)
    elif insn.memory == Mem.WGT:
        counters.wgt_load_nbytes += elements * elem_bytes(config, Mem.WGT)
    elif insn.memory == Mem.UOP:
        counters.uop_load_nbytes += elements * elem_bytes(config, Mem.UOP)
    else:  # ACC and ACC8 both count at the accumulator's width, as fsim does
        counters.acc_load_nbytes += elements * elem_bytes(config, Mem.ACC)


def _flags(insn: Insn, kind: str) -> list[str]:
    """The directions ("prev", "next") `insn` pops or pushes a token in."""
    return [d for d in ("prev", "next") if getattr(insn, f"{kind}_{d}")]


def _check_flags(index: int, insn: Insn, stage: str) -> None:
    """Checked before anything runs: a flag toward a neighbour the module lacks."""
    for kind in ("pop", "push"):
        invalid = [d for d in _flags(insn, kind) if (stage, d) not in FIFOS]
        if invalid:
            raise VTAError(f"instruction {index} ({type(insn).__name__.upper()} on the {stage} "
                           f"module) has {kind}_{invalid[0]} set, but that module has no "
                           f"{invalid[0]} neighbour")  # fmt: skip


class _Launch:
    """One run of a stream: the three in-order queues, the token FIFOs and the clock."""

    def __init__(self, simulator: Simulator, insns: list[Insn]):
        self.simulator, self.counters = simulator, Counters()
        self.queues = {stage: deque() for stage in STAGES}
        for index, insn in enumerate(insns):
            _check_flags(index, insn, stage_of(insn))
            self.queues[stage_of(insn)].append((index, insn))
        self.fifos = {name: deque() for name in ("l2g", "g2l", "g2s", "s2g")}  # push times
        self.clock = dict.fromkeys(STAGES, 0)

    def execute(self) -> None:
        while any(self.queues.values()):
            ready = [
                (start, stage) for stage in STAGES if (start := self._ready(stage)) is not None
            ]
            if not ready:
                raise VTAError(f"deadlock: {self._waits()}")
            start, stage = min(ready, key=lambda pair: (pair[0], STAGES.index(pair[1])))
            self._step(stage, start)
        left = {name: len(fifo) for name, fifo in self.fifos.items() if fifo}
        if left:
            raise VTAError(f"the stream ends with unconsumed dependency tokens: {left}")
        self.counters.cycles = max(self.clock.values())

    def _ready(self, stage: str) -> int | None:
        """When the head of `stage` can start, or None while a token or FIFO slot is missing."""
        if not self.queues[stage]:
            return None
        _, insn = self.queues[stage][0]
        start = self.clock[stage]
        for direction in _flags(insn, "pop"):
            fifo = self.fifos[POPS[(stage, direction)]]
            if not fifo:
                return None
            start = max(start, fifo[0])
        for direction in _flags(insn, "push"):
            if len(self.fifos[FIFOS[(stage, direction)]]) >= FIFO_DEPTH:
                return None
        return start

    def _step(self, stage: str, start: int) -> None:
        index, insn = self.queues[stage].popleft()
        for direction in _flags(insn, "pop"):
            self.fifos[POPS[(stage, direction)]].popleft()
        try:
            self._apply(insn)
        except VTAError as err:
            raise VTAError(f"instruction {index}: {err}") from None
        duration = self.simulator.model.cycles(insn)
        self.counters.stalled[stage] += start - self.clock[stage]
        self.counters.busy[stage] += duration
        self.clock[stage] = start + duration
        for direction in _flags(insn, "push"):
            self.fifos[FIFOS[(stage, direction)]].append(self.clock[stage])

    def _apply(self, insn: Insn) -> None:
        sim, counters = self.simulator, self.counters
        if isinstance(insn, Store):
            sim.store(insn, counters)
        elif isinstance(insn, Load):
            sim.load(insn, counters)
        elif isinstance(insn, Gemm):
            sim.gemm(insn, counters)
        elif isinstance(insn, Alu):
            sim.alu(insn, counters)

    def _waits(self) -> str:
        waits = []
        for stage in STAGES:
            if self.queues[stage]:
                index, insn = self.queues[stage][0]
                waits.append(
                    f"{stage} waits at instruction {index} ({type(insn).__name__.upper()})"
                )
        tokens = {name: len(fifo) for name, fifo in self.fifos.items()}
        return "; ".join(waits) + f"; tokens {tokens}"
