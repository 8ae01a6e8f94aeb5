"""PackMatmulWeights: constant [K, N] weights become contiguous [N/P, K, P] panels of P = two
vectors of the target's float32 (32 on AVX-512, 16 on AVX2)."""

import numpy as np
import tvm
from onnx import TensorProto, helper
from tvm import relax

import tvmopt
from tvmopt.backends.llvm.pack_matmul_weights import VECTORS
from tvmopt.backends.llvm.pack_matmul_weights import PackMatmulWeights as pack_pass

from .helpers import assert_matches_ort, make_model
from .passes_helpers import const, f32, module, run_relax

RNG = np.random.default_rng(0)
LANES = 16  # AVX-512's float32 vector
PANEL = VECTORS * LANES
W = RNG.standard_normal((8, 2 * PANEL)).astype(np.float32)
PackMatmulWeights = pack_pass(LANES)


def test_weight_is_packed_into_panels():
    before = module({"x": f32(1, 3, 8)}, lambda bb, x: relax.op.matmul(x, const(W)))
    packed = W.reshape(8, 2, PANEL).transpose(1, 0, 2)

    def expected(bb, x):
        rows = bb.emit(relax.op.reshape(x, (3, 8)))
        panels = bb.emit(relax.op.matmul(rows, const(packed)))
        columns = bb.emit(
            relax.op.reshape(bb.emit(relax.op.permute_dims(panels, [1, 0, 2])), (3, 64))
        )
        return relax.op.reshape(columns, (1, 3, 64))

    tvm.ir.assert_structural_equal(PackMatmulWeights(before), module({"x": f32(1, 3, 8)}, expected))
    x = RNG.standard_normal((1, 3, 8)).astype(np.float32)
    np.testing.assert_allclose(run_relax(PackMatmulWeights(before), x), x @ W, rtol=1e-5, atol=1e-5)


def test_panels_are_two_vectors_of_the_target():
    before = module({"x": f32(1, 3, 8)}, lambda bb, x: relax.op.matmul(x, const(W)))
    panels = [b.value for b in pack_pass(8)(before)["main"].body.blocks[0].bindings
              if isinstance(b.value, relax.Call) and b.value.op.name == "relax.matmul"]  # fmt: skip
    assert [p.args[1].value.numpy().shape for p in panels] == [(4, 8, 16)]  # AVX2: 16 columns


def test_does_not_fire_on_odd_widths_batched_or_variable_weights():
    odd = RNG.standard_normal((8, 40)).astype(np.float32)  # 40 columns: no whole panels
    per_batch = RNG.standard_normal((2, 8, 64)).astype(np.float32)  # one W per batch

    def body(bb, x, batched, w):
        a = bb.emit(relax.op.matmul(x, const(odd)))
        b = bb.emit(relax.op.matmul(batched, const(per_batch)))
        c = bb.emit(relax.op.matmul(x, w))  # not a constant
        return relax.Tuple([a, b, c])

    params = {"x": f32(3, 8), "batched": f32(2, 3, 8), "w": f32(8, 64)}
    mod = module(params, body)
    tvm.ir.assert_structural_equal(PackMatmulWeights(mod), mod)


def test_leading_dims_fold_into_rows():
    mod = module({"x": f32(2, 3, 8)}, lambda bb, x: relax.op.matmul(x, const(W)))
    x = RNG.standard_normal((2, 3, 8)).astype(np.float32)
    np.testing.assert_allclose(run_relax(PackMatmulWeights(mod), x), x @ W, rtol=1e-5, atol=1e-5)


def test_dense_layer_matches_onnxruntime():
    model = make_model(
        [helper.make_node("Gemm", ["x", "w", "b"], ["g"], transB=1),
         helper.make_node("Relu", ["g"], ["y"])],
        [("x", TensorProto.FLOAT, [2, 48])],
        [("y", TensorProto.FLOAT, [2, 96])],
        initializers={
            "w": RNG.standard_normal((96, 48)).astype(np.float32),
            "b": RNG.standard_normal(96).astype(np.float32),
        },
    )  # fmt: skip
    assert_matches_ort(model, tvmopt.compile(model))
