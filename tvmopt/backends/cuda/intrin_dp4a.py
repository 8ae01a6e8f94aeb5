"""dp4a as a tensor intrinsic over operands held in registers.

TVM's own (s_tir.tensor_intrin.dot_product_common) reads both operands from shared memory at
every step. Our GEMM loads a thread's rows of A and columns of B into registers once per step
and reuses each word across the thread's tile, so the operands here are "local":

    C[0] += sum_k A[k] * B[k]    for k < 4, int8 x int8 -> int32
"""

from __future__ import annotations

import functools

from tvm.s_tir import TensorIntrin
from tvm.script import tirx as T

DP4A_LOCAL_INTRIN = "tvmopt_dp4a_s8s8s32_local"


@functools.cache
def register_dp4a() -> None:
    """Registers the step once per process, when a kernel or a tuning record first needs it
    (parsing TVMScript at import cost every `import tvmopt` 0.4 s)."""

    @T.prim_func(s_tir=True)
    def _description(
        A: T.Buffer((4,), "int8", offset_factor=1, align=4, scope="local"),
        B: T.Buffer((4,), "int8", offset_factor=1, align=4, scope="local"),
        C: T.Buffer((1,), "int32", offset_factor=1, align=4, scope="local"),
    ) -> None:
        with T.sblock("root"):
            T.reads(C[0], A[0:4], B[0:4])
            T.writes(C[0])
            for k in range(0, 4):
                with T.sblock("update"):
                    vk = T.axis.remap("R", [k])
                    C[0] = C[0] + T.cast(A[vk], "int32") * T.cast(B[vk], "int32")


    @T.prim_func(s_tir=True)
    def _dp4a(
        A: T.Buffer((4,), "int8", offset_factor=1, align=4, scope="local"),
        B: T.Buffer((4,), "int8", offset_factor=1, align=4, scope="local"),
        C: T.Buffer((1,), "int32", offset_factor=1, align=4, scope="local"),
    ) -> None:
        with T.sblock("root"):
            T.reads(C[0], A[0:4], B[0:4])
            T.writes(C[0])
            C[0] += T.call_pure_extern(
                "__dp4a", A.vload([0], "int8x4"), B.vload([0], "int8x4"), T.int32(0), dtype="int32"
            )

    TensorIntrin.register(DP4A_LOCAL_INTRIN, _description, _dp4a)
