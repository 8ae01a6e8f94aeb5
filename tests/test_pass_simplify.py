"""Simplify: identities vanish and layout chains collapse; nothing else changes."""

import numpy as np
import onnx
import tvm
from onnx import TensorProto, helper
from tvm import relax

import tvmopt
from tvmopt.passes.simplify import Simplify

from .helpers import assert_matches_ort, make_model
from .passes_helpers import const, f32, module


def test_identities_and_chains_collapse():
    def before(bb, x):
        a = bb.emit(relax.op.multiply(const(np.ones(3)), x))  # x*1
        b = bb.emit(relax.op.permute_dims(a, [1, 0]))
        c = bb.emit(relax.op.permute_dims(b, [1, 0]))  # transpose pair
        d = bb.emit(relax.op.add(c, const(0.0)))  # x+0
        e = bb.emit(relax.op.reshape(d, (3, 2)))
        f = bb.emit(relax.op.reshape(e, (6,)))  # reshape chain
        return relax.op.expand_dims(f, [0])

    def expected(bb, x):
        return relax.op.reshape(x, (1, 6))

    mod = module({"x": f32(2, 3)}, before)
    result = relax.transform.DeadCodeElimination()(Simplify(mod))
    tvm.ir.assert_structural_equal(result, module({"x": f32(2, 3)}, expected))


def test_does_not_fire_on_non_identities():
    def body(bb, x):
        a = bb.emit(relax.op.subtract(const(np.zeros(3)), x))  # 0-x is not x
        b = bb.emit(relax.op.multiply(a, const([1.0, 2.0, 1.0])))  # not all ones
        c = bb.emit(relax.op.add(b, const(np.zeros((4, 2, 3)))))  # broadcasts: changes shape
        return relax.op.permute_dims(c, [0, 2, 1])  # not an identity

    mod = module({"x": f32(2, 3)}, body)
    tvm.ir.assert_structural_equal(Simplify(mod), mod)


def test_identity_heavy_onnx_model_matches_onnxruntime_with_fewer_kernels():
    node = helper.make_node
    model = make_model(
        [
            node("Identity", ["x"], ["i"]),
            node("Dropout", ["i"], ["d"]),
            node("Mul", ["d", "ones"], ["m"]),
            node("Add", ["m", "zeros"], ["a"]),
            node("Transpose", ["a"], ["t1"], perm=[0, 2, 1]),
            node("Transpose", ["t1"], ["t2"], perm=[0, 2, 1]),
            node("Reshape", ["t2", "flat"], ["r"]),
            node("Relu", ["r"], ["y"]),
        ],
        [("x", TensorProto.FLOAT, [2, 3, 4])],
        [("y", TensorProto.FLOAT, [2, 12])],
        initializers={
            "ones": np.ones(4, np.float32),
            "zeros": np.zeros((3, 4), np.float32),
            "flat": np.array([2, 12], np.int64),
        },
    )
    optimized, plain = tvmopt.compile(model), tvmopt.compile(model, opt_level=0)
    assert_matches_ort(model, optimized)
    assert_matches_ort(model, plain)
    assert _kernels(model, 3) < _kernels(model, 0)


def _kernels(model: onnx.ModelProto, opt_level: int) -> int:
    from tvmopt.backends import resolve
    from tvmopt.frontend.onnx import import_model, prepare
    from tvmopt.passes.stats import count

    backend = resolve("llvm")
    lowered = backend.pipeline(backend.graph_passes(opt_level), opt_level)(
        import_model(prepare(model))
    )
    return count(lowered)[1]


def test_permute_of_unit_axes_is_a_reshape():
    mod = module({"x": f32(4, 1, 8)}, lambda bb, x: relax.op.permute_dims(x, [1, 0, 2]))
    expected = module({"x": f32(4, 1, 8)}, lambda bb, x: relax.op.reshape(x, (1, 4, 8)))
    tvm.ir.assert_structural_equal(Simplify(mod), expected)
    moving = module({"x": f32(4, 2, 8)}, lambda bb, x: relax.op.permute_dims(x, [1, 0, 2]))
    tvm.ir.assert_structural_equal(Simplify(moving), moving)


def test_broadcast_to_its_own_shape_vanishes():
    """The model zoo's ResNet-50 (opset 6 Adds, upgraded) brings these between its blocks: a
    permute cannot sink through one, and the whole model stayed NCHW (0.3x its speed)."""
    mod = module({"x": f32(1, 4, 8, 8)},
                 lambda bb, x: relax.op.nn.relu(bb.emit(relax.op.broadcast_to(x, (1, 4, 8, 8)))))
    expected = module({"x": f32(1, 4, 8, 8)}, lambda bb, x: relax.op.nn.relu(x))
    tvm.ir.assert_structural_equal(Simplify(mod), expected)
    growing = module({"x": f32(1, 4, 1, 8)},
                     lambda bb, x: relax.op.broadcast_to(x, (1, 4, 8, 8)))  # fmt: skip
    tvm.ir.assert_structural_equal(Simplify(growing), growing)


def test_reshape_between_symbolic_shapes_stays():
    n = tvm.tirx.Var("n", "int64")
    mod = module(
        {"x": relax.TensorType((1, n), "float32")}, lambda bb, x: relax.op.reshape(x, (n,))
    )
    tvm.ir.assert_structural_equal(Simplify(mod), mod)
