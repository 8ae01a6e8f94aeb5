"""Gates stay out of their producer's kernel: `x * sigmoid(conv(mean(x)))`, a squeeze-excite
block's channel gate, broadcasts a [N, 1, 1, C] conv output over the whole map.

TVM's FuseOps adds a broadcast op to the kernel of the op before it, so the gate's 1x1 conv,
its sigmoid and the multiply over the map became one function whose output is the map: no conv
rule recognizes it, and the fallback ran EfficientNet-B0's 16 gates at 0.1-0.2 GFLOP/s, 30% of
the model's time (channels last; in NCHW fuse_epilogue.py's conv groups kept the multiply out).
Such a broadcast is marked injective, which FuseOps does not add to a conv's or matmul's
kernel: the conv keeps its rule (with its sigmoid), the multiply runs as its own kernel.
"""

from __future__ import annotations

import math

from tvm import relax, tirx

from .._tvm import tvm
from .consts import static_shape
from .uses import bindings, relax_functions

ELEMWISE, BROADCAST, INJECTIVE, OUT_ELEMWISE_FUSABLE = 0, 1, 2, 4  # TVM's OpPatternKind
CALL_TIR = "relax.call_tir"


@tvm.transform.module_pass(opt_level=0, name="tvmopt.KeepGatesApart")
def keep_gates_apart(mod: tvm.IRModule, ctx) -> tvm.IRModule:
    gates = set()
    for _, func in relax_functions(mod):  # main, and a bucketed library's static variants
        calls = bindings(func)
        gates |= {call.args[0] for call in calls.values() if _gates(mod, call, calls)}
    for gvar in gates:
        mod[gvar] = mod[gvar].with_attr("op_pattern", INJECTIVE)
    return mod


def _gates(mod, call, calls: dict) -> bool:
    """A broadcast whose smaller operand a conv or matmul computes (through element-wise ops).
    TVM annotates a multiply by a [1, 1, 1, C] tensor element-wise, so the shapes decide."""
    if _pattern(mod, call) not in (ELEMWISE, BROADCAST):
        return False
    out = static_shape(call)
    return out is not None and any(
        _smaller(arg, out) and _from_anchor(mod, arg, calls) for arg in call.args[1].fields
    )


def _smaller(arg, shape: tuple) -> bool:
    arg_shape = static_shape(arg)
    return arg_shape is not None and math.prod(arg_shape) < math.prod(shape)


def _from_anchor(mod, var, calls: dict) -> bool:
    while isinstance(var, relax.Var) and var in calls:
        pattern = _pattern(mod, calls[var])
        if pattern == OUT_ELEMWISE_FUSABLE:
            return True
        if pattern != ELEMWISE:
            return False
        var = calls[var].args[1].fields[0]
    return False


def _pattern(mod, call) -> int | None:
    if getattr(call, "op", None) != tvm.ir.Op.get(CALL_TIR):
        return None
    func = mod[call.args[0]]
    if not isinstance(func, tirx.PrimFunc) or func.attrs is None or "op_pattern" not in func.attrs:
        return None
    return int(func.attrs["op_pattern"])
