"""FoldConstants: constant subgraphs become constants, inlined into their uses, under a cap."""

import numpy as np
import tvm
from onnx import TensorProto, helper
from tvm import relax

import tvmopt
from tvmopt.passes.fold_constants import FoldConstants

from .helpers import assert_matches_ort, make_model
from .passes_helpers import const, f32, module, run_relax

W = np.arange(6, dtype=np.float32).reshape(3, 2)


def test_layout_and_arithmetic_on_constants_fold_into_the_use():
    def before(bb, x):
        w = bb.emit(relax.op.permute_dims(const(W), [1, 0]))
        s = bb.emit(relax.op.add(w, const(1.0)))
        return relax.op.multiply(x, s)

    def expected(bb, x):
        bb.emit(const(W.T))  # now-dead bindings stay until DeadCodeElimination
        bb.emit(const(W.T + 1))
        return relax.op.multiply(x, const(W.T + 1))

    mod = module({"x": f32(2, 3)}, before)
    tvm.ir.assert_structural_equal(FoldConstants()(mod), module({"x": f32(2, 3)}, expected))


def test_does_not_fold_inputs_or_oversized_generators():
    def body(bb, x):
        grown = bb.emit(relax.op.broadcast_to(const(1.0), (4096, 4096, 2)))  # 128 MiB from 4 B
        total = bb.emit(relax.op.add(x, const(2.0)))  # depends on an input
        return relax.Tuple([grown, total])

    mod = module({"x": f32(2, 3)}, body)
    tvm.ir.assert_structural_equal(FoldConstants()(mod), mod)


def test_folded_module_computes_the_same():
    def before(bb, x):
        w = bb.emit(relax.op.permute_dims(const(W), [1, 0]))
        return relax.op.matmul(x, bb.emit(relax.op.reshape(w, (3, 2))))

    mod = module({"x": f32(4, 3)}, before)
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_allclose(run_relax(FoldConstants()(mod), x), run_relax(mod, x), rtol=1e-6)


def test_gemm_with_transposed_weight_matches_onnxruntime():
    rng = np.random.default_rng(0)
    model = make_model(
        [
            helper.make_node("Transpose", ["w"], ["wt"], perm=[1, 0]),
            helper.make_node("Mul", ["wt", "scale"], ["ws"]),
            helper.make_node("MatMul", ["x", "ws"], ["y"]),
        ],
        [("x", TensorProto.FLOAT, [2, 8])],
        [("y", TensorProto.FLOAT, [2, 4])],
        initializers={
            "w": rng.standard_normal((4, 8)).astype(np.float32),
            "scale": np.float32(0.5),
        },
    )
    assert_matches_ort(model, tvmopt.compile(model))


def test_casts_fold_to_the_target_dtype():
    def before(bb, x):
        one = bb.emit(relax.op.astype(const(1.0), "float64"))
        return relax.op.divide(x, one)

    def expected(bb, x):
        bb.emit(const(1.0, "float64"))
        return relax.op.divide(x, const(1.0, "float64"))

    mod = module({"x": relax.TensorType((), "float64")}, before)
    result = FoldConstants()(mod)
    tvm.ir.assert_structural_equal(result, module({"x": relax.TensorType((), "float64")}, expected))
