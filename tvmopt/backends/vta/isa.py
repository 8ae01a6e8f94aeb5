"""VTA's instruction set: LOAD, STORE, GEMM, ALU and FINISH as 128-bit words, and 32-bit micro-ops,
bit-exact with apache/tvm-vta's hw_spec.h (golden encodings in tests/test_vta_isa.py).

Fields pack LSB first into two 64-bit words; a field that would straddle bit 64 starts at bit
64. Index fields are as wide as the buffer they address, so other configurations change the
layout (as on the hardware, streams are not portable across configurations).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import IntEnum
from functools import cache

from ...errors import VTAError
from .config import DEFAULT, VTAConfig

LOOP_BITS = 14  # loop extents
INSN_BYTES = 16


class Opcode(IntEnum):
    LOAD = 0
    STORE = 1
    GEMM = 2
    FINISH = 3
    ALU = 4


class Mem(IntEnum):
    UOP = 0
    WGT = 1
    INP = 2
    ACC = 3
    OUT = 4
    ACC8 = 5  # int8 in DRAM, sign-extended into ACC


class AluOp(IntEnum):
    MIN = 0
    MAX = 1
    ADD = 2
    SHR = 3
    MUL = 4


# The configuration's name for one element of each memory type (VTAConfig.elem_bytes).
ELEMENT = {Mem.UOP: "uop", Mem.WGT: "wgt", Mem.INP: "inp", Mem.ACC: "acc", Mem.OUT: "out",
           Mem.ACC8: "acc8"}  # fmt: skip


def elem_bytes(config: VTAConfig, memory: Mem) -> int:
    """Bytes of one DRAM element of `memory` (a LOAD's or STORE's unit of address and size)."""
    return config.elem_bytes[ELEMENT[memory]]


@dataclass(frozen=True)
class Insn:
    """Dependency flags every instruction carries (see simulator.py for the token queues)."""

    pop_prev: bool = False
    pop_next: bool = False
    push_prev: bool = False
    push_next: bool = False


@dataclass(frozen=True)
class Load(Insn):
    memory: Mem = Mem.INP
    sram_base: int = 0
    dram_base: int = 0  # in elements of the memory type
    y_size: int = 0
    x_size: int = 0  # 0: a no-op that carries only its dependency flags
    x_stride: int = 0
    y_pad_0: int = 0
    y_pad_1: int = 0
    x_pad_0: int = 0
    x_pad_1: int = 0


@dataclass(frozen=True)
class Store(Load):
    memory: Mem = Mem.OUT


@dataclass(frozen=True)
class LoopInsn(Insn):
    """Micro-ops [uop_bgn, uop_end) run for i < iter_out, j < iter_in; each index of a micro-op
    is offset by i * factor_out + j * factor_in."""

    uop_bgn: int = 0
    uop_end: int = 0
    iter_out: int = 1
    iter_in: int = 1
    dst_factor_out: int = 0
    dst_factor_in: int = 0
    src_factor_out: int = 0
    src_factor_in: int = 0


@dataclass(frozen=True)
class Gemm(LoopInsn):
    reset: bool = False  # zero the addressed accumulators instead of multiplying
    wgt_factor_out: int = 0
    wgt_factor_in: int = 0


@dataclass(frozen=True)
class Alu(LoopInsn):
    op: AluOp = AluOp.ADD
    use_imm: bool = False
    imm: int = 0  # 16-bit two's complement


@dataclass(frozen=True)
class Finish(Insn):
    pass


@dataclass(frozen=True)
class Uop:
    dst: int  # ACC index
    src: int  # INP index (GEMM) or ACC index (ALU)
    wgt: int = 0  # WGT index (GEMM)


OPCODES = {Load: Opcode.LOAD, Store: Opcode.STORE, Gemm: Opcode.GEMM, Finish: Opcode.FINISH,
           Alu: Opcode.ALU}  # fmt: skip
COMMON = [("opcode", 3), ("pop_prev", 1), ("pop_next", 1), ("push_prev", 1), ("push_next", 1)]


@cache
def layouts(config: VTAConfig = DEFAULT) -> dict[Opcode, list[tuple[str, int, int]]]:
    """(field, first bit, width) per opcode for `config`."""
    uop, acc, inp, wgt = (config.index_bits(b) for b in ("uop", "acc", "inp", "wgt"))
    memory = [("memory", 3), ("sram_base", 16), ("dram_base", 32), ("y_size", 16),
              ("x_size", 16), ("x_stride", 16), ("y_pad_0", 4), ("y_pad_1", 4), ("x_pad_0", 4),
              ("x_pad_1", 4)]  # fmt: skip
    loops = [("reset", 1), ("uop_bgn", uop), ("uop_end", uop + 1), ("iter_out", LOOP_BITS),
             ("iter_in", LOOP_BITS), ("dst_factor_out", acc), ("dst_factor_in", acc),
             ("src_factor_out", inp), ("src_factor_in", inp)]  # fmt: skip
    fields = {
        Opcode.LOAD: memory, Opcode.STORE: memory, Opcode.FINISH: [],
        Opcode.GEMM: loops + [("wgt_factor_out", wgt), ("wgt_factor_in", wgt)],
        Opcode.ALU: loops + [("op", 3), ("use_imm", 1), ("imm", 16)],
    }  # fmt: skip
    return {opcode: _placed(COMMON + extra, opcode) for opcode, extra in fields.items()}


def _placed(fields, opcode) -> list[tuple[str, int, int]]:
    placed, bit = [], 0
    for name, width in fields:
        if bit < 64 < bit + width:
            bit = 64  # no field straddles the two words
        placed.append((name, bit, width))
        bit += width
    if bit > 128:
        raise VTAError(f"{opcode.name} needs {bit} bits in this configuration; VTA has 128")
    return placed


def encode(insn: Insn, config: VTAConfig = DEFAULT) -> bytes:
    """The 16 bytes of `insn` (w0 then w1, little-endian)."""
    opcode = OPCODES[type(insn)]
    values = {f.name: getattr(insn, f.name) for f in dataclasses.fields(insn)}
    values["opcode"] = opcode
    word = 0
    for name, bit, width in layouts(config)[opcode]:
        word |= _field_bits(opcode, name, int(values.get(name, 0)), width) << bit
    return word.to_bytes(INSN_BYTES, "little")


def _field_bits(opcode: Opcode, name: str, value: int, width: int) -> int:
    if name == "imm":
        if not -(1 << 15) <= value < 1 << 15:
            raise VTAError(f"ALU immediate {value} does not fit 16 signed bits")
        return value & 0xFFFF
    if not 0 <= value < 1 << width:
        raise VTAError(f"{opcode.name} field {name}={value} does not fit {width} bits")
    return value


def decode(data: bytes, config: VTAConfig = DEFAULT) -> Insn:
    """The instruction in 16 bytes; VTAError for an unknown opcode or enum value."""
    word = int.from_bytes(data[:INSN_BYTES], "little")
    try:
        opcode = Opcode(word & 7)
    except ValueError:
        raise VTAError(f"unknown opcode {word & 7}") from None
    values = {
        name: (word >> bit) & ((1 << width) - 1) for name, bit, width in layouts(config)[opcode]
    }
    cls = next(c for c, o in OPCODES.items() if o == opcode)
    names = {f.name for f in dataclasses.fields(cls)}  # ALU has GEMM's reset bit and ignores it
    return cls(**_typed(cls, {k: v for k, v in values.items() if k in names}))


def _typed(cls, values: dict) -> dict:
    types = {"memory": Mem, "op": AluOp}
    out = {}
    for name, value in values.items():
        if name in types:
            try:
                value = types[name](value)
            except ValueError:
                raise VTAError(f"{cls.__name__} has unknown {name} {value}") from None
        elif name == "imm":
            value = value - (1 << 16) if value & 0x8000 else value
        elif name in {"pop_prev", "pop_next", "push_prev", "push_next", "reset", "use_imm"}:
            value = bool(value)
        out[name] = value
    return out


def uop_bits(config: VTAConfig = DEFAULT) -> tuple[int, int, int]:
    """Widths of a micro-op's dst, src and wgt fields, packed in that order from bit 0."""
    acc = config.index_bits("acc")
    return acc, max(acc, config.index_bits("inp")), config.index_bits("wgt")


def encode_uop(uop: Uop, config: VTAConfig = DEFAULT) -> int:
    acc, src, wgt = uop_bits(config)
    for name, value, width in (("dst", uop.dst, acc), ("src", uop.src, src), ("wgt", uop.wgt, wgt)):
        if not 0 <= value < 1 << width:
            raise VTAError(f"micro-op {name}={value} does not fit {width} bits")
    return uop.dst | uop.src << acc | uop.wgt << (acc + src)


def decode_uop(word: int, config: VTAConfig = DEFAULT) -> Uop:
    acc, src, wgt = uop_bits(config)
    mask = lambda bits: (1 << bits) - 1  # noqa: E731
    return Uop(word & mask(acc), word >> acc & mask(src), word >> (acc + src) & mask(wgt))


def encode_stream(insns, config: VTAConfig = DEFAULT) -> bytes:
    return b"".join(encode(insn, config) for insn in insns)


def decode_stream(data: bytes, config: VTAConfig = DEFAULT) -> list[Insn]:
    if len(data) % INSN_BYTES:
        raise VTAError(f"an instruction stream is whole 16-byte words; got {len(data)} bytes")
    insns = []
    for index in range(0, len(data), INSN_BYTES):
        try:
            insns.append(decode(data[index : index + INSN_BYTES], config))
        except VTAError as err:
            raise VTAError(f"instruction {index // INSN_BYTES}: {err}") from None
    return insns
