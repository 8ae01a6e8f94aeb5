"""Matmuls over a symbolic row count (a sequence length) with the row tiles run serially inside
parallel (batch, column tile) tasks and the last row tile peeled (symbolic_matmul.py's
peel_row_tiles): the packed FFN/projection weights and attention's P @ V, compiled for the host
(AVX-512) and the AVX2 build, checked against ONNX Runtime at lengths that are and are not
multiples of the 7- (AVX-512) and 6-row (AVX2) register blocks."""

import numpy as np
import pytest
from onnx import TensorProto, helper
from tvm import te, tirx

import tvmopt
from tvmopt.backends import resolve_target
from tvmopt.backends.llvm.rule_matmul import Matmul

from .helpers import assert_matches_ort, make_model

RNG = np.random.default_rng(0)
HEADS, HEAD, HIDDEN = 12, 32, 64  # 12 heads: enough tasks to peel P @ V
TARGETS = {"host": None, "avx2": {"kind": "llvm", "mcpu": "x86-64-v3"}}
LENGTHS = (1, 17, 130, 384)


def projection_model():
    """x @ W + b over [1, n, HIDDEN]: W packed into column panels, rows symbolic."""
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]),
             helper.make_node("Add", ["m", "b"], ["y"])]  # fmt: skip
    return make_model(
        nodes,
        [("x", TensorProto.FLOAT, [1, "n", HIDDEN])],
        [("y", TensorProto.FLOAT, [1, "n", 3 * HIDDEN])],
        initializers={
            "w": RNG.standard_normal((HIDDEN, 3 * HIDDEN)).astype(np.float32) / 8,
            "b": RNG.standard_normal(3 * HIDDEN).astype(np.float32),
        },
    )


def probabilities_times_values_model():
    """Attention's P @ V: [batch, heads, n, n] @ [batch, heads, n, HEAD]."""
    return make_model(
        [helper.make_node("MatMul", ["p", "v"], ["y"])],
        [
            ("p", TensorProto.FLOAT, ["batch", HEADS, "n", "n"]),
            ("v", TensorProto.FLOAT, ["batch", HEADS, "n", HEAD]),
        ],  # fmt: skip
        [("y", TensorProto.FLOAT, ["batch", HEADS, "n", HEAD])],
    )


@pytest.mark.parametrize("isa", list(TARGETS))
def test_symbolic_projection_matches_onnxruntime(isa):
    model = projection_model()
    compiled = tvmopt.compile(model, target=TARGETS[isa], dims={"n": (1, 512)})
    for n in LENGTHS:
        x = RNG.standard_normal((1, n, HIDDEN)).astype(np.float32)
        assert_matches_ort(model, compiled, {"x": x})


@pytest.mark.parametrize("isa", list(TARGETS))
def test_symbolic_probabilities_times_values_match_onnxruntime(isa):
    model = probabilities_times_values_model()
    compiled = tvmopt.compile(model, target=TARGETS[isa], dims={"batch": (1, 2), "n": (1, 512)})
    for batch, n in [(1, 1), (2, 17), (1, 130), (1, 384)]:
        p = RNG.random((batch, HEADS, n, n)).astype(np.float32)
        v = RNG.standard_normal((batch, HEADS, n, HEAD)).astype(np.float32)
        assert_matches_ort(model, compiled, {"p": p, "v": v})


def panel_matmul(rows, panels: int):
    """The packed projection's kernel: x [rows, K] times panels [P, K, 32] -> [P, rows, 32]."""
    x = te.placeholder((rows, tirx.IntImm("int64", HIDDEN)), name="x")
    w = te.placeholder((panels, HIDDEN, 32), name="w")
    k = te.reduce_axis((0, HIDDEN), name="k")
    y = te.compute((panels, rows, 32), lambda p, i, j: te.sum(x[i, k] * w[p, k, j], axis=k),
                   name="matmul")  # fmt: skip
    return te.create_prim_func([x, w, y])


def test_symbolic_rows_peel_the_last_row_tile_when_tasks_are_enough():
    target = resolve_target("llvm")
    script = Matmul().apply(panel_matmul(tirx.Var("n", "int64"), 8), target, False).mod.script()
    # parallel over the 8 panels alone (a constant count), the row tiles serial and hinted
    assert "T.parallel(8)" in script or "T.parallel(T.int64(8))" in script, script
    assert "pragma_loop_partition_hint" in script
    # too few tasks for the threads: the row tiles stay in the parallel loop, unpeeled
    few = Matmul().apply(panel_matmul(tirx.Var("n", "int64"), 2), target, False).mod.script()
    assert "pragma_loop_partition_hint" not in few
