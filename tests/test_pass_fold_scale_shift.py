"""FoldScaleShift: batch norm and per-channel scales end up in conv/matmul weights and bias."""

import numpy as np
import tvm
from onnx import TensorProto, helper
from tvm import relax

import tvmopt
from tvmopt.passes.fold_scale_shift import FoldScaleShift

from .helpers import assert_matches_ort, make_model
from .passes_helpers import const, f32, module, run_relax

RNG = np.random.default_rng(0)
W = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
B = RNG.standard_normal((1, 4, 1, 1)).astype(np.float32)
S = RNG.uniform(0.5, 2.0, (1, 4, 1, 1)).astype(np.float32)
X = (1, 3, 8, 8)


def conv(x, weight):
    return relax.op.nn.conv2d(x, const(weight), padding=[1, 1])


def test_scale_and_shift_after_conv_fold_into_weight_and_bias():
    def before(bb, x):
        y = bb.emit(relax.op.add(bb.emit(conv(x, W)), const(B)))
        z = bb.emit(relax.op.subtract(bb.emit(relax.op.multiply(y, const(S))), const(B)))
        return relax.op.divide(z, const(2.0))

    def expected(bb, x):
        scaled = W * (S.reshape(4) / 2)[:, None, None, None]
        return relax.op.add(bb.emit(conv(x, scaled)), const((B * S - B) * 0.5))

    mod = module({"x": f32(*X)}, before)
    folded = relax.transform.DeadCodeElimination()(FoldScaleShift(mod))
    tvm.ir.assert_structural_equal(folded, module({"x": f32(*X)}, expected))
    x = RNG.standard_normal(X).astype(np.float32)
    np.testing.assert_allclose(run_relax(folded, x), run_relax(mod, x), rtol=1e-5, atol=1e-5)


def test_scale_along_the_last_axis_folds_into_matmul():
    weight = RNG.standard_normal((8, 5)).astype(np.float32)
    scale = RNG.standard_normal(5).astype(np.float32)

    def before(bb, x):
        return relax.op.multiply(bb.emit(relax.op.matmul(x, const(weight))), const(scale))

    def expected(bb, x):
        return relax.op.matmul(x, const(weight * scale))

    result = relax.transform.DeadCodeElimination()(FoldScaleShift(module({"x": f32(2, 8)}, before)))
    tvm.ir.assert_structural_equal(result, module({"x": f32(2, 8)}, expected))


def test_does_not_fire_on_non_channel_scales_or_non_constant_weights():
    spatial = RNG.standard_normal((1, 1, 8, 8)).astype(np.float32)  # varies over H and W

    def body(bb, x, w):
        a = bb.emit(relax.op.multiply(bb.emit(conv(x, W)), const(spatial)))
        b = bb.emit(relax.op.multiply(bb.emit(relax.op.nn.conv2d(x, w, padding=[1, 1])), const(S)))
        return relax.Tuple([a, b])

    mod = module({"x": f32(*X), "w": f32(4, 3, 3, 3)}, body)
    tvm.ir.assert_structural_equal(FoldScaleShift(mod), mod)


def test_conv_batchnorm_scale_model_matches_onnxruntime_and_loses_its_batchnorm():
    node = helper.make_node
    model = make_model(
        [
            node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
            node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"], ["n"]),
            node("Mul", ["n", "s"], ["m"]),
            node("Relu", ["m"], ["y"]),
        ],
        [("x", TensorProto.FLOAT, list(X))],
        [("y", TensorProto.FLOAT, [1, 4, 8, 8])],
        initializers={
            "w": W, "b": B.reshape(4), "gamma": S.reshape(4), "beta": B.reshape(4),
            "mean": B.reshape(4) * 0.1, "var": S.reshape(4), "s": S.reshape(4, 1, 1),
        },
    )  # fmt: skip
    assert_matches_ort(model, tvmopt.compile(model))
    from tvmopt.backends import resolve_target
    from tvmopt.frontend.onnx import import_model, prepare
    from tvmopt.passes.pipeline import O2, instantiate

    mod = import_model(prepare(model))
    with resolve_target("llvm"):
        for _, each in instantiate(O2):
            mod = each(mod)
    ops = [b.value.op.name for b in mod["main"].body.blocks[0].bindings]
    assert ops == ["relax.nn.conv2d", "relax.add", "relax.nn.relu"]


def test_division_over_a_symbolic_length_becomes_a_multiply():
    # attention's scores / sqrt(d) over [heads, n, n]: a scalar keeps any shape, so the divide
    # turns into a multiply as it does at a static length (vdivps against vmulps per element)
    n = tvm.tirx.Var("n", "int64")
    divisor = np.array(8.0, np.float32)

    def before(bb, x):
        return relax.op.divide(x, const(divisor))

    def expected(bb, x):
        return relax.op.multiply(x, const(np.float32(1) / divisor))

    mod = module({"x": f32(4, n, n)}, before)
    tvm.ir.assert_structural_equal(FoldScaleShift(mod), module({"x": f32(4, n, n)}, expected))


def test_does_not_fire_where_a_constant_could_broadcast_a_symbolic_dim():
    # x: [2, n] plus a constant of 3 along n is only defined where n is 1 or 3: left alone
    n = tvm.tirx.Var("n", "int64")
    mod = module({"x": f32(2, n)}, lambda bb, x: relax.op.subtract(x, const(np.ones(3, "f4"))))
    tvm.ir.assert_structural_equal(FoldScaleShift(mod), mod)
