"""Batch-1 dense layers (GEMVs): the Matmul rule's register tile of one row spans several weight
panels (rule_matmul.py), so that its inner loop has independent FMA chains, on each ISA."""

from __future__ import annotations

import re

import numpy as np
import pytest
from onnx import TensorProto, helper
from tvm import te

import tvmopt
from tvmopt._tvm import tvm
from tvmopt.backends import resolve_target
from tvmopt.backends.llvm.cpu import cpu_of
from tvmopt.backends.llvm.rule_matmul import Matmul

from .helpers import assert_matches_ort, make_model
from .test_register_tiles import ISAS, _inner_loop, _inner_loop_spills

RNG = np.random.default_rng(0)
# the accumulator an FMA (SSE4: the add after its multiply) writes
ACCUMULATE = re.compile(r"^\s*(?:vfmadd\w*|addps)\s+.*,\s*%([xyz]mm\d+)$|^\s*fmla\s+(v\d+)\.")


def _mlp(widths=(96, 256, 200, 10)):
    """Gemm + Relu layers of batch 1: 256 columns (whole panels), 200 (a part panel), 10 (one)."""
    nodes, initializers, previous = [], {}, "x"
    for index, (cin, cout) in enumerate(zip(widths, widths[1:], strict=False)):
        initializers[f"w{index}"] = RNG.standard_normal((cout, cin)).astype(np.float32)
        initializers[f"b{index}"] = RNG.standard_normal(cout).astype(np.float32)
        gemm = helper.make_node("Gemm", [previous, f"w{index}", f"b{index}"], [f"g{index}"],
                                transB=1)  # fmt: skip
        nodes += [gemm, helper.make_node("Relu", [f"g{index}"], [f"r{index}"])]
        previous = f"r{index}"
    nodes[-1].output[0] = "y"
    return make_model(nodes, [("x", TensorProto.FLOAT, [1, widths[0]])],
                      [("y", TensorProto.FLOAT, [1, widths[-1]])], initializers)  # fmt: skip


@pytest.mark.parametrize("isa", ["host", "avx2"])
def test_batch_1_mlp_matches_onnxruntime(isa):
    target = None if isa == "host" else ISAS[isa]
    model = _mlp()
    assert_matches_ort(model, tvmopt.compile(model, target=target))


def _packed_gemv_assembly(target, depth=64, panels=8) -> str:
    """x [1, K] times a weight in panels [N / P, K, P] (pack_matmul_weights.py), scheduled."""
    panel = 2 * cpu_of(target).lanes()
    x, w = te.placeholder((1, depth)), te.placeholder((panels, depth, panel))
    k = te.reduce_axis((0, depth), name="k")
    y = te.compute((panels, 1, panel), lambda p, i, j: te.sum(x[i, k] * w[p, k, j], axis=k),
                   name="matmul")  # fmt: skip
    func = te.create_prim_func([x, w, y]).with_attr("global_symbol", "main")
    scheduled = Matmul().apply(func, target, False)
    return tvm.compile(scheduled.mod, target=target).mod.inspect_source("asm")


@pytest.mark.parametrize("isa", sorted(ISAS))
def test_one_row_tile_has_independent_chains_and_no_spill(isa):
    """Before: 2 accumulators (one panel), each FMA waiting on the one before it."""
    target = resolve_target(ISAS[isa])
    arch = ISAS[isa]["mtriple"].split("-")[0]
    asm = _packed_gemv_assembly(target)
    accumulators = {m.group(1) or m.group(2) for m in map(ACCUMULATE.match, _inner_loop(asm, arch))
                    if m}  # fmt: skip
    assert _inner_loop_spills(asm, arch) == 0
    assert len(accumulators) >= 8
