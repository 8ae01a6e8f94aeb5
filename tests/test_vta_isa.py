"""VTA's instruction encoding against the golden words of the reference (hw_spec.h bit-fields
compiled with gcc), round trips, and the errors of fields that do not fit."""

import pytest

from tvmopt.backends.vta.config import VTAConfig
from tvmopt.backends.vta.isa import (
    Alu,
    AluOp,
    Finish,
    Gemm,
    Load,
    Mem,
    Store,
    Uop,
    decode,
    decode_stream,
    decode_uop,
    encode,
    encode_stream,
    encode_uop,
    layouts,
)  # fmt: skip
from tvmopt.errors import OptionError, VTAError

GOLDEN = [
    (Load(memory=Mem.INP, pop_next=True, push_next=True, sram_base=5, dram_base=0x1234, y_size=3,
          x_size=14, x_stride=56, y_pad_0=1, y_pad_1=1, x_pad_0=1, x_pad_1=1),
     0x00000048D0001550, 0x11110038000E0003),
    (Store(pop_prev=True, push_prev=True, sram_base=0, dram_base=0x20000, y_size=7, x_size=14,
           x_stride=14),
     0x0000080000000229, 0x0000000E000E0007),
    (Gemm(pop_prev=True, push_prev=True, uop_bgn=10, uop_end=19, iter_out=7, iter_in=14,
          dst_factor_out=14, dst_factor_in=1, src_factor_out=16, src_factor_in=1,
          wgt_factor_out=9, wgt_factor_in=0),
     0x001C003802600A2A, 0x000090020400080E),
    (Alu(op=AluOp.SHR, push_next=True, uop_bgn=0, uop_end=1, iter_out=2, iter_in=98,
         dst_factor_out=98, dst_factor_in=1, src_factor_out=98, src_factor_in=1, use_imm=True,
         imm=8),
     0x00C4001000200044, 0x0008B00218800862),
    (Alu(op=AluOp.MAX, push_next=True, uop_bgn=0, uop_end=1, iter_out=2, iter_in=98,
         dst_factor_out=98, dst_factor_in=1, src_factor_out=98, src_factor_in=1, use_imm=True,
         imm=-127),
     0x00C4001000200044, 0xFF81900218800862),
    (Finish(), 0x0000000000000003, 0x0000000000000000),
]  # fmt: skip


@pytest.mark.parametrize("insn, w0, w1", GOLDEN, ids=lambda v: type(v).__name__)
def test_encoding_matches_the_golden_words(insn, w0, w1):
    data = encode(insn)
    assert int.from_bytes(data[:8], "little") == w0
    assert int.from_bytes(data[8:], "little") == w1
    assert decode(data) == insn


def test_micro_op_golden_word_and_round_trip():
    assert encode_uop(Uop(dst=100, src=200, wgt=300)) == 0x4B064064
    assert decode_uop(0x4B064064) == Uop(100, 200, 300)


def test_fields_never_straddle_the_two_words():
    for fields in layouts().values():
        for name, bit, width in fields:
            assert bit + width <= 64 or bit >= 64, name


def test_other_block_sizes_change_the_index_widths():
    small = VTAConfig(log_block=3, log_wgt_buff_size=16, log_acc_buff_size=15)  # an 8x8 core
    assert small.block == 8
    assert [small.depth(b) for b in ("inp", "wgt", "acc")] == [4096, 1024, 1024]
    insn = Gemm(uop_bgn=3, uop_end=9, iter_out=2, iter_in=4, src_factor_out=3000)
    assert decode(encode(insn, small), small) == insn  # 12-bit INP factors here
    with pytest.raises(VTAError, match="src_factor_out=3000 does not fit 11 bits"):
        encode(insn)


def test_a_configuration_whose_gemm_needs_more_than_128_bits_is_refused():
    deep = VTAConfig(log_block=3, log_acc_buff_size=16)  # 4096-deep INP and WGT: 12-bit factors
    with pytest.raises(VTAError, match="GEMM needs 134 bits in this configuration; VTA has 128"):
        encode(Gemm(), deep)


@pytest.mark.parametrize(
    "insn, message",
    [
        (Gemm(iter_out=1 << 14), "GEMM field iter_out=16384 does not fit 14 bits"),
        (Alu(imm=40000), "ALU immediate 40000 does not fit 16 signed bits"),
        (Load(x_pad_0=16), "LOAD field x_pad_0=16 does not fit 4 bits"),
        (Store(sram_base=-1), "STORE field sram_base=-1 does not fit 16 bits"),
    ],
)
def test_fields_that_do_not_fit_are_errors(insn, message):
    with pytest.raises(VTAError, match=message):
        encode(insn)


def test_malformed_streams_name_the_instruction():
    stream = encode_stream([Finish(), Finish()])
    assert decode_stream(stream) == [Finish(), Finish()]
    with pytest.raises(VTAError, match="whole 16-byte words; got 31 bytes"):
        decode_stream(stream[:-1])
    unknown_opcode = (7).to_bytes(16, "little")
    with pytest.raises(VTAError, match="instruction 1: unknown opcode 7"):
        decode_stream(stream[:16] + unknown_opcode)
    unknown_memory = (6 << 7).to_bytes(16, "little")  # a LOAD of memory type 6
    with pytest.raises(VTAError, match="instruction 1: Load has unknown memory 6"):
        decode_stream(stream[:16] + unknown_memory)


def test_configurations_outside_what_vta_computes_are_refused():
    with pytest.raises(OptionError, match="int8 x int8 -> int32"):
        VTAConfig(log_acc_width=4)
    with pytest.raises(OptionError, match="log_block must be 1..6"):
        VTAConfig(log_block=7)
