"""vpdpbusd as a tensor intrinsic over a register-resident accumulator.

TVM's own VNNI intrinsic (s_tir.tensor_intrin.x86) declares its int32 accumulator in global
memory, so it cannot tensorize a block whose accumulator was cached into "local" scope to stay in
registers. This is the same 16x4 step, uint8 x int8 -> int32, with a local accumulator:

    C[i] += sum_k A[k] * B[i, k]    for i < 16, k < 4

(LLVM 20 declares vpdpbusd's operands as <64 x i8>, no longer <16 x i32> as TVM's one passes.)
"""

from __future__ import annotations

from tvm.s_tir import TensorIntrin
from tvm.script import tirx as T

VNNI_LOCAL_INTRIN = "tvmopt_vnni_16x4_local"


@T.prim_func(s_tir=True)
def _dot_desc(
    A: T.Buffer((4,), "uint8", offset_factor=1),
    B: T.Buffer((16, 4), "int8", offset_factor=1),
    C: T.Buffer((16,), "int32", offset_factor=1, scope="local"),
) -> None:
    with T.sblock("root"):
        T.reads(C[0:16], A[0:4], B[0:16, 0:4])
        T.writes(C[0:16])
        for i in T.serial(0, 16):
            for k in T.serial(0, 4):
                with T.sblock("update"):
                    vi, vk = T.axis.remap("SR", [i, k])
                    C[vi] = C[vi] + T.cast(A[vk], "int32") * T.cast(B[vi, vk], "int32")


@T.prim_func(s_tir=True)
def _dot_vnni(
    A: T.Buffer((4,), "uint8", offset_factor=1),
    B: T.Buffer((16, 4), "int8", offset_factor=1),
    C: T.Buffer((16,), "int32", offset_factor=1, scope="local"),
) -> None:
    with T.sblock("root"):
        T.reads(C[0:16], A[0:4], B[0:16, 0:4])
        T.writes(C[0:16])
        row = T.reinterpret(A.vload([0], "uint8x4"), dtype="int32")  # 4 bytes as one lane
        rows = T.reinterpret(T.broadcast(row, 16), dtype="int8x64")
        C[T.ramp(T.int32(0), 1, 16)] = T.call_llvm_pure_intrin(
            T.llvm_lookup_intrinsic_id("llvm.x86.avx512.vpdpbusd.512"),
            C.vload([0], dtype="int32x16"),
            rows,
            B.vload([0, 0], dtype="int8x64"),
            dtype="int32x16",
        )


TensorIntrin.register(VNNI_LOCAL_INTRIN, _dot_desc, _dot_vnni)
