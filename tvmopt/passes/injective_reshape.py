"""Reshapes over symbolic extents fuse as static ones do: their kernels are marked injective.

    reshape kernel (op_pattern opaque) -> the same kernel (op_pattern injective)

TVM's AnnotateTIROpPattern finds no simple index where a reshape divides by a symbolic extent
(`lv[(j // 1152 + i) % (batch * sequence), j % 1152]`) and calls it opaque, so FuseOps kept
every symbolic reshape a kernel of its own, and with it each transpose and bias add around it:
a symbolic MiniLM layer ran its packed matmuls' output transposes, their bias adds and the
QKV split as nine kernel calls where the static layer makes four (fused_transpose_reshape_add...).
A reshape reads one input element for each output element whatever its extents: injective.
Runs between AnnotateTIROpPattern and FuseOps.
"""

from __future__ import annotations

from tvm import s_tir, tirx

from .._tvm import tvm

INJECTIVE, OPAQUE = 2, 8  # TVM's OpPatternKind
RESHAPE_BLOCK = "T_reshape"  # the block of TOPI's reshape, which LegalizeOps gives relax.reshape


@tvm.transform.module_pass(opt_level=0, name="tvmopt.InjectiveReshape")
def injective_reshape(mod: tvm.IRModule, ctx) -> tvm.IRModule:
    for gvar, func in list(mod.functions_items()):
        if isinstance(func, tirx.PrimFunc) and _opaque_reshape(func):
            mod[gvar] = func.with_attr("op_pattern", INJECTIVE)
    return mod


def _opaque_reshape(func) -> bool:
    if func.attrs is None or int(func.attrs.get("op_pattern", -1)) != OPAQUE:
        return False
    sch = s_tir.Schedule(func)
    try:
        blocks = sch.get_child_blocks(sch.get_sblock("root"))
    except s_tir.ScheduleError:  # hand-written IR (a scan, a sort) has no root block
        return False
    return len(blocks) == 1 and sch.get(blocks[0]).name_hint == RESHAPE_BLOCK
