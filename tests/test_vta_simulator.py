"""The VTA simulator: fsim's semantics bit for bit, the token queues (deadlocks and leftovers are
errors, never hangs), counters, and the cycle model's overlap of load, compute and store."""

import numpy as np
import pytest

from tvmopt.backends.vta.config import VTAConfig
from tvmopt.backends.vta.isa import Alu, AluOp, Finish, Gemm, Load, Mem, Store, Uop
from tvmopt.backends.vta.lower_dense import dense_reference, lower_dense
from tvmopt.backends.vta.program import ProgramBuilder
from tvmopt.backends.vta.requantize import Requantize
from tvmopt.backends.vta.simulator import Simulator
from tvmopt.errors import VTAError

RNG = np.random.default_rng(0)


def run(program):
    dram = program.dram.copy()
    return Simulator(dram, program.config).run(program.insns), dram


def int8(*shape):
    return RNG.integers(-128, 128, shape).astype(np.int8)


@pytest.mark.parametrize("k, n", [(16, 16), (64, 48), (100, 37), (1000, 300)])
@pytest.mark.parametrize("relu", [False, True])
def test_dense_layers_are_bit_exact(k, n, relu):
    x, weight = int8(k), int8(n, k)
    bias = RNG.integers(-5000, 5000, n).astype(np.int32)
    requantize = Requantize(shift=9, relu=relu)
    program = lower_dense(x, weight, bias, requantize)
    counters, dram = run(program)
    y = program.read("y", dram).reshape(-1)[:n]
    np.testing.assert_array_equal(y, dense_reference(x, weight, bias, requantize))
    blocks_k, blocks_n = -(-k // 16), -(-n // 16)
    assert counters.gemm_counter == blocks_k * blocks_n  # one uop-iteration per 16x16 block
    assert counters.wgt_load_nbytes == blocks_k * blocks_n * 256
    assert counters.out_store_nbytes == blocks_n * 16
    assert 0 < counters.gemm_utilization < 1


@pytest.mark.parametrize("shift", [16, 17, 20])
def test_shifts_whose_half_exceeds_the_alu_immediate_are_bit_exact(shift):
    """The zoo's ResNet-50 needs s = 17: its half, 65536, does not fit the 16-bit immediate,
    and the layer failed to compile; past s = 16 the shift goes in two steps."""
    x, weight = int8(256), int8(32, 256)
    bias = RNG.integers(-(1 << 22), 1 << 22, 32).astype(np.int32)
    requantize = Requantize(shift=shift, relu=False)
    assert all(abs(imm) < 1 << 15 for _, imm in requantize.alu_ops())
    program = lower_dense(x, weight, bias, requantize)
    _, dram = run(program)
    y = program.read("y", dram).reshape(-1)[:32]
    np.testing.assert_array_equal(y, dense_reference(x, weight, bias, requantize))
    assert len(set(y.tolist())) > 4  # the values, not all clipped


def test_the_two_step_shift_rounds_as_the_one_step():
    acc = np.arange(-(1 << 20), 1 << 20, 7, dtype=np.int64)
    for shift in (1, 5, 17):
        q = acc >> (shift - 1)
        np.testing.assert_array_equal((q + 1) >> 1, (acc + (1 << (shift - 1))) >> shift)


def test_another_block_size_is_bit_exact():
    config = VTAConfig(log_block=3, log_wgt_buff_size=16, log_acc_buff_size=15)
    x, weight, bias = int8(40), int8(20, 40), np.arange(20, dtype=np.int32)
    program = lower_dense(x, weight, bias, Requantize(shift=6), config)
    _, dram = run(program)
    y = program.read("y", dram).reshape(-1)[:20]
    np.testing.assert_array_equal(y, dense_reference(x, weight, bias, Requantize(shift=6)))


def alu_program(values: np.ndarray, ops, use_imm=True, other=None):
    """ACC[0..n) = values (and ACC[n..2n) = other), the ALU ops over them, stored as int8."""
    b = ProgramBuilder()
    acc = np.concatenate([values, other]) if other is not None else values
    region = b.place("acc", Mem.ACC, acc.astype(np.int32))
    out = b.reserve("out", Mem.OUT, len(values))
    n = len(values)
    b.emit(Load(memory=Mem.ACC, dram_base=region.base, y_size=1, x_size=len(acc),
                x_stride=len(acc)))  # fmt: skip
    bgn, end = b.uop_kernel("alu", [Uop(dst=0, src=0 if use_imm else n)])
    for op, imm in ops:
        b.emit(Alu(op=op, uop_bgn=bgn, uop_end=end, iter_in=n, dst_factor_in=1, src_factor_in=1,
                   use_imm=use_imm, imm=imm))  # fmt: skip
    b.push("compute", "store")
    b.pop("compute", "store")
    b.emit(Store(dram_base=out.base, y_size=1, x_size=n, x_stride=n))
    program = b.finish()
    _, dram = run(program)
    return program.read("out", dram)


def test_alu_semantics_match_fsim():
    v = np.array([[-300, -129, -1, 0, 1, 127, 128, 255, 1000, -1000, 70000, -70000, 5, -5, 2, 3]])
    np.testing.assert_array_equal(alu_program(v, [(AluOp.SHR, 2)]), (v >> 2).astype(np.int8))
    np.testing.assert_array_equal(alu_program(v, [(AluOp.SHR, -3)]), (v << 3).astype(np.int8))
    clipped = alu_program(v, [(AluOp.MIN, 127), (AluOp.MAX, -127)])
    np.testing.assert_array_equal(clipped, np.clip(v, -127, 127).astype(np.int8))
    # STORE truncates (no saturation): 128 -> -128, 255 -> -1, 70000 -> 112
    np.testing.assert_array_equal(alu_program(v, [(AluOp.ADD, 0)]), v.astype(np.int8))
    big = np.full((1, 16), 2**31 - 1)
    wrapped = alu_program(big, [(AluOp.ADD, 1), (AluOp.SHR, 24)])  # wraps to -2**31, then >> 24
    np.testing.assert_array_equal(wrapped, np.full((1, 16), -128, np.int8))
    other = np.arange(16).reshape(1, 16) - 8
    tensor = alu_program(v, [(AluOp.MUL, 0)], use_imm=False, other=other)
    np.testing.assert_array_equal(tensor, (v * other).astype(np.int8))


def test_acc8_loads_sign_extend():
    b = ProgramBuilder()
    data = np.array([[-128, -1, 0, 1, 127] + [0] * 11], np.int8)
    src = b.place("in", Mem.ACC8, data)
    out = b.reserve("out", Mem.OUT, 1)
    b.emit(Load(memory=Mem.ACC8, dram_base=src.base, y_size=1, x_size=1, x_stride=1))
    bgn, end = b.uop_kernel("shr", [Uop(dst=0, src=0)])
    b.emit(Alu(op=AluOp.SHR, uop_bgn=bgn, uop_end=end, use_imm=True, imm=1))
    b.push("compute", "store")
    b.pop("compute", "store")
    b.emit(Store(dram_base=out.base, y_size=1, x_size=1, x_stride=1))
    program = b.finish()
    counters, dram = run(program)
    np.testing.assert_array_equal(program.read("out", dram), data.astype(np.int32) >> 1)
    assert counters.acc_load_nbytes == 64  # counted at the accumulator's width, as fsim


def test_load_padding_writes_zeros():
    b = ProgramBuilder()
    src = b.place("in", Mem.ACC, np.arange(1, 33, dtype=np.int32))  # 2 elements
    out = b.reserve("out", Mem.OUT, 6)
    b.emit(Load(memory=Mem.ACC, dram_base=src.base, y_size=1, x_size=2, x_stride=2, x_pad_0=1,
                x_pad_1=1, y_pad_1=1))  # fmt: skip
    bgn, end = b.uop_kernel("copy", [Uop(dst=0, src=0)])
    b.emit(Alu(op=AluOp.SHR, uop_bgn=bgn, uop_end=end, iter_in=8, dst_factor_in=1,
               src_factor_in=1, use_imm=True))  # fmt: skip
    b.push("compute", "store")
    b.pop("compute", "store")
    b.emit(Store(dram_base=out.base, y_size=1, x_size=6, x_stride=6))
    program = b.finish()
    _, dram = run(program)
    rows = program.read("out", dram)
    assert not rows[0].any() and not rows[3:].any()
    np.testing.assert_array_equal(rows[1:3].reshape(-1), np.arange(1, 33))


def test_a_missing_token_is_a_deadlock_not_a_hang():
    insns = [Gemm(pop_prev=True, iter_out=0), Finish()]  # waits for a load that never comes
    with pytest.raises(VTAError, match=r"deadlock: compute waits at instruction 0 \(GEMM\)"):
        Simulator(np.zeros(64, np.uint8)).run(insns)


def test_a_full_token_fifo_without_a_reader_deadlocks():
    insns = [Load(memory=Mem.INP, push_next=True) for _ in range(9)] + [Finish()]
    with pytest.raises(VTAError, match="deadlock: load waits at instruction 8"):
        Simulator(np.zeros(64, np.uint8)).run(insns)


@pytest.mark.parametrize(
    "insns, message",
    [
        ([Load(memory=Mem.INP, push_next=True), Finish()],
         "unconsumed dependency tokens: {.l2g.: 1}"),
        ([Gemm()], "does not end with FINISH"),
        ([Store(pop_next=True), Finish()], "has pop_next set, but that module has no next"),
        ([Load(memory=Mem.INP, x_size=4, y_size=1, dram_base=10), Finish()],
         "instruction 0: LOAD INP reads DRAM bytes outside the 64-byte image"),
        ([Load(memory=Mem.INP, x_size=4, y_size=1, sram_base=2046), Finish()],
         r"instruction 0: LOAD INP writes elements \[2046, 2050\) of a 2048-deep buffer"),
        ([Gemm(uop_bgn=0, uop_end=1, iter_in=3000, dst_factor_in=1), Finish()],
         "instruction 0: GEMM dst index 2999 is outside ACC"),
        ([Store(memory=Mem.ACC, x_size=1, y_size=1), Finish()], "STORE writes OUT only"),
    ],
)  # fmt: skip
def test_malformed_streams_are_clear_errors(insns, message):
    with pytest.raises(VTAError, match=message):
        Simulator(np.zeros(64, np.uint8)).run(insns)


def test_tokens_let_loads_overlap_compute():
    """The same dense layer, serialized vs double-buffered: overlap cuts the cycle count."""
    x, weight, bias = int8(512), int8(512, 512), np.zeros(512, np.int32)
    program = lower_dense(x, weight, bias, Requantize(shift=8))
    overlapped, _ = run(program)
    serialized = sum(overlapped.busy.values())
    assert overlapped.cycles < serialized
    assert overlapped.busy["load"] <= overlapped.cycles
