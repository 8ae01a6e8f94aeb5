"""The int8 dot-product steps of each ISA, as tensor intrinsics over a register-resident
accumulator of L lanes of int32:

    C[i] += sum_k A[k] * B[i, k]    for i < L, k < D

    vpdpbusd   AVX-512 VNNI (L 16) and AVX-VNNI (L 8): D = 4, uint8 x int8, no saturation
    vpmaddubsw AVX-512 (L 16) and AVX2 (L 8) without VNNI: D = 4, uint8 x int8 added in pairs
               into int16, then vpmaddwd by ones adds the pairs into int32. The pairs saturate
               (255 x 127 x 2 = 64770, where ONNX Runtime's AVX2 kernels lose 3.5-7.5% of the
               output scale) unless |w0| + |w1| <= 128: only weights that admit it take this
               step (cpu.py's int8_pairs_fit; 7-bit weights always do).
    vpmaddubsw, depth 8 (L 16 and 8): two vpmaddubsw, on the block's two L x 4 halves, added
               in int16 (vpaddw) before the one vpmaddwd by ones: 3 multiply-port instructions
               per 8 channels, not 4. Each int16 lane sums 4 products; only weights whose
               quads fit take it (cpu.py's int8_quads_fit).
    vpmaddwd   AVX-512 (L 16) and AVX2 (L 8): D = 2, int16 x int16, exact for any weight: the
               kernel widens its operands to int16 (kernel_int8_gemm.py).
    sdot       aarch64 with dot products (L 4): D = 4, int8 x int8; the kernel reads the
               activation shifted to int8 (kernel_int8_gemm.py's signed storage)

A's D values are one 32-bit word, broadcast to all L lanes; B is an L x D block of the packed
weight (depth 8: 2 x L x 4, each half's 4 values of A a word of their own). TVM's own VNNI
intrinsic (s_tir.tensor_intrin.x86) passes vpdpbusd's operands as <16 x i32>, which LLVM 20 no
longer accepts (it declares them <64 x i8>). The operands are expressions, not named values:
TVMScript would give each a "local" buffer, and TVM allocates those per loop iteration
(schedule_util.REGISTER_SCOPE).
"""

from __future__ import annotations

import functools

from tvm.s_tir import TensorIntrin
from tvm.script import tirx as T

from .cpu import INT8_STEPS
from .schedule_util import REGISTER_SCOPE

# the same 16x4 VNNI step over a "local" tile: the scope of tuning records written before
# REGISTER_SCOPE
VNNI_LOCAL_INTRIN = "tvmopt_vnni_16x4_local"


def _intrinsic(step, scope: str):
    """(description, implementation) of one Int8Step over an accumulator in `scope`."""
    if step.parts > 1:
        return _split_intrinsic(step, scope)
    lanes, depth, a_dtype, b_dtype = step.lanes, step.depth, step.activation, step.weight

    @T.prim_func(s_tir=True)
    def description(
        A: T.Buffer((depth,), a_dtype, offset_factor=1),
        B: T.Buffer((lanes, depth), b_dtype, offset_factor=1),
        C: T.Buffer((lanes,), "int32", offset_factor=1, scope=scope),
    ) -> None:
        with T.sblock("root"):
            T.reads(C[0:lanes], A[0:depth], B[0:lanes, 0:depth])
            T.writes(C[0:lanes])
            for i in T.serial(0, lanes):
                for k in T.serial(0, depth):
                    with T.sblock("update"):
                        vi, vk = T.axis.remap("SR", [i, k])
                        C[vi] = C[vi] + T.cast(A[vk], "int32") * T.cast(B[vi, vk], "int32")

    @T.prim_func(s_tir=True)
    def implementation(
        A: T.Buffer((depth,), a_dtype, offset_factor=1),
        B: T.Buffer((lanes, depth), b_dtype, offset_factor=1),
        C: T.Buffer((lanes,), "int32", offset_factor=1, scope=scope),
    ) -> None:
        with T.sblock("root"):
            T.reads(C[0:lanes], A[0:depth], B[0:lanes, 0:depth])
            T.writes(C[0:lanes])
            C[T.ramp(T.int32(0), 1, lanes)] = _step(
                step,
                C.vload([0], dtype=f"int32x{lanes}"),
                _broadcast_word(step, A.vload([0], f"{a_dtype}x{depth}")),
                T.reinterpret(
                    B.vload([0, 0], dtype=f"{b_dtype}x{lanes * depth}"), dtype=_operand(step)
                ),
            )

    return description, implementation


def _split_intrinsic(step, scope: str):
    """The depth-8 vpmaddubsw step over a [2, L, 4] block: C[i] += sum A[4p + k] * B[p, i, k]."""
    lanes, depth = step.lanes, step.depth
    part = depth // step.parts

    @T.prim_func(s_tir=True)
    def description(
        A: T.Buffer((depth,), "uint8", offset_factor=1),
        B: T.Buffer((2, lanes, part), "int8", offset_factor=1),
        C: T.Buffer((lanes,), "int32", offset_factor=1, scope=scope),
    ) -> None:
        with T.sblock("root"):
            T.reads(C[0:lanes], A[0:depth], B[0:2, 0:lanes, 0:part])
            T.writes(C[0:lanes])
            for i, p, k in T.grid(lanes, 2, part):
                with T.sblock("update"):
                    vi, vp, vk = T.axis.remap("SRR", [i, p, k])
                    C[vi] = C[vi] + T.cast(A[vp * part + vk], "int32") * T.cast(
                        B[vp, vi, vk], "int32"
                    )

    @T.prim_func(s_tir=True)
    def implementation(
        A: T.Buffer((depth,), "uint8", offset_factor=1),
        B: T.Buffer((2, lanes, part), "int8", offset_factor=1),
        C: T.Buffer((lanes,), "int32", offset_factor=1, scope=scope),
    ) -> None:
        with T.sblock("root"):
            T.reads(C[0:lanes], A[0:depth], B[0:2, 0:lanes, 0:part])
            T.writes(C[0:lanes])
            C[T.ramp(T.int32(0), 1, lanes)] = _split_step(
                step,
                C.vload([0], dtype=f"int32x{lanes}"),
                [_broadcast_word(step, A.vload([p * part], f"uint8x{part}")) for p in (0, 1)],
                [
                    T.reinterpret(
                        B.vload([p, 0, 0], dtype=f"int8x{lanes * part}"), dtype=_operand(step)
                    )
                    for p in (0, 1)
                ],
            )

    return description, implementation


def _operand(step) -> str:
    """The LLVM intrinsic's operand type: L x 32 bits of its elements."""
    return f"{step.operand}x{step.lanes * 32 // step.operand_bits}"


def _broadcast_word(step, values):
    """4 bytes (or 2 int16) of A as one int32 lane, broadcast to all L, as the operand type."""
    word = T.reinterpret(values, dtype="int32")
    return T.reinterpret(T.broadcast(word, step.lanes), dtype=_operand(step))


def _split_step(step, accumulator, a_parts, b_parts):
    """Each part's int16 pair sums added in int16 (exact on the weights the step admits), then
    summed into int32 by one vpmaddwd by ones."""
    pairs = [_llvm(step.llvm_intrinsic, f"int16x{2 * step.lanes}", a, b)
             for a, b in zip(a_parts, b_parts, strict=True)]  # fmt: skip
    ones = T.broadcast(T.int16(1), 2 * step.lanes)
    return accumulator + _llvm(step.pair_sum, f"int32x{step.lanes}", pairs[0] + pairs[1], ones)


def _step(step, accumulator, a, b):
    """vpdpbusd accumulates in the instruction; vpmaddwd returns the pair sums to add;
    vpmaddubsw returns int16 pair sums, which vpmaddwd by ones adds into int32 first."""
    if step.accumulates:
        return _llvm(step.llvm_intrinsic, f"int32x{step.lanes}", accumulator, a, b)
    if step.pair_sum is None:
        return accumulator + _llvm(step.llvm_intrinsic, f"int32x{step.lanes}", a, b)
    pairs = _llvm(step.llvm_intrinsic, f"int16x{2 * step.lanes}", a, b)
    ones = T.broadcast(T.int16(1), 2 * step.lanes)
    return accumulator + _llvm(step.pair_sum, f"int32x{step.lanes}", pairs, ones)


def _llvm(intrinsic: str, dtype: str, *operands):
    return T.call_llvm_pure_intrin(T.llvm_lookup_intrinsic_id(intrinsic), *operands, dtype=dtype)


@functools.cache
def register_int8_steps() -> None:
    """Registers every ISA's step, once per process, when a kernel or a tuning record first needs
    them: parsing their TVMScript takes about 5 s, which every `import tvmopt` (every CLI call)
    paid when this ran at import."""
    for step in INT8_STEPS.values():
        TensorIntrin.register(step.name, *_intrinsic(step, REGISTER_SCOPE))
    TensorIntrin.register(VNNI_LOCAL_INTRIN, *_intrinsic(INT8_STEPS["vpdpbusd-512"], "local"))
