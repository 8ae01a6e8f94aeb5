"""vpdpbusd as a tensor intrinsic over a register-resident accumulator.

TVM's own VNNI intrinsic (s_tir.tensor_intrin.x86) passes vpdpbusd's operands as <16 x i32>,
which LLVM 20 no longer accepts (it declares them <64 x i8>). This is the same 16x4 step,
uint8 x int8 -> int32, over the register tile's accumulator (schedule_util.REGISTER_SCOPE):

    C[i] += sum_k A[k] * B[i, k]    for i < 16, k < 4

Its operands are expressions, not named values: TVMScript would give each a "local" buffer, and
TVM allocates those per loop iteration (see REGISTER_SCOPE).
"""

from __future__ import annotations

from tvm.s_tir import TensorIntrin
from tvm.script import tirx as T

from .schedule_util import REGISTER_SCOPE

VNNI_INTRIN = "tvmopt_vnni_16x4"
# the same step over a "local" tile: the scope of tuning records written before REGISTER_SCOPE
VNNI_LOCAL_INTRIN = "tvmopt_vnni_16x4_local"


def _intrinsic(scope: str):
    """(description, implementation) of the step over an accumulator in `scope`."""

    @T.prim_func(s_tir=True)
    def description(
        A: T.Buffer((4,), "uint8", offset_factor=1),
        B: T.Buffer((16, 4), "int8", offset_factor=1),
        C: T.Buffer((16,), "int32", offset_factor=1, scope=scope),
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
    def vnni(
        A: T.Buffer((4,), "uint8", offset_factor=1),
        B: T.Buffer((16, 4), "int8", offset_factor=1),
        C: T.Buffer((16,), "int32", offset_factor=1, scope=scope),
    ) -> None:
        with T.sblock("root"):
            T.reads(C[0:16], A[0:4], B[0:16, 0:4])
            T.writes(C[0:16])
            C[T.ramp(T.int32(0), 1, 16)] = T.call_llvm_pure_intrin(
                T.llvm_lookup_intrinsic_id("llvm.x86.avx512.vpdpbusd.512"),
                C.vload([0], dtype="int32x16"),
                T.reinterpret(  # the 4 uint8 as one int32 lane, broadcast to all 16
                    T.broadcast(T.reinterpret(A.vload([0], "uint8x4"), dtype="int32"), 16),
                    dtype="int8x64",
                ),
                B.vload([0, 0], dtype="int8x64"),
                dtype="int32x16",
            )

    return description, vnni


TensorIntrin.register(VNNI_INTRIN, *_intrinsic(REGISTER_SCOPE))
TensorIntrin.register(VNNI_LOCAL_INTRIN, *_intrinsic("local"))
