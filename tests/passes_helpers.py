"""Builders for the pass tests: small Relax modules from Python, and the graph passes run alone."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax


def f32(*shape):
    return relax.TensorType(shape, "float32")


def module(params: dict, body) -> tvm.IRModule:
    """A module whose main takes `params` (name -> type) and returns body(bb, *vars) from a
    dataflow block; `body` emits intermediate bindings with `bb` and returns the (unemitted)
    output expression."""
    bb = relax.BlockBuilder()
    variables = [relax.Var(name, ty) for name, ty in params.items()]
    with bb.function("main", variables):
        with bb.dataflow():
            out = bb.emit_output(body(bb, *variables))
        bb.emit_func_output(out)
    return bb.get()


def const(array, dtype="float32"):
    return relax.const(np.asarray(array, dtype=dtype), dtype)  # relax.const alone makes f64 f32


def run_relax(mod: tvm.IRModule, *arrays) -> np.ndarray:
    executable = tvm.compile(mod, "llvm")
    vm = relax.VirtualMachine(executable, tvm.cpu())
    return vm["main"](*[tvm.runtime.tensor(a) for a in arrays]).numpy()
