"""Conv1x1AsMatmul: pointwise convolutions on narrow maps become matmuls over channels."""

import numpy as np
import tvm
from onnx import TensorProto, helper
from tvm import relax

import tvmopt
from tvmopt.backends.llvm.conv1x1_as_matmul import Conv1x1AsMatmul

from .helpers import assert_matches_ort, make_model
from .passes_helpers import const, f32, module, run_relax

RNG = np.random.default_rng(0)
W = RNG.standard_normal((16, 8, 1, 1)).astype(np.float32)


def test_pointwise_conv_becomes_a_matmul():
    before = module({"x": f32(1, 8, 7, 7)}, lambda bb, x: relax.op.nn.conv2d(x, const(W)))

    def expected(bb, x):
        flat = bb.emit(relax.op.reshape(x, (1, 8, 49)))
        rows = bb.emit(relax.op.permute_dims(flat, [0, 2, 1]))
        product = bb.emit(relax.op.matmul(rows, const(W.reshape(16, 8).T.copy())))
        channels = bb.emit(relax.op.permute_dims(product, [0, 2, 1]))
        return relax.op.reshape(channels, (1, 16, 7, 7))

    after = Conv1x1AsMatmul(before)
    tvm.ir.assert_structural_equal(after, module({"x": f32(1, 8, 7, 7)}, expected))
    x = RNG.standard_normal((1, 8, 7, 7)).astype(np.float32)
    reference = np.einsum("oc,nchw->nohw", W[:, :, 0, 0], x)
    np.testing.assert_allclose(run_relax(after, x), reference, rtol=1e-5, atol=1e-5)


def test_does_not_fire_on_wide_maps_windows_or_strides():
    w3 = RNG.standard_normal((16, 8, 3, 3)).astype(np.float32)

    def body(bb, narrow, wide):
        return relax.Tuple([
            bb.emit(relax.op.nn.conv2d(wide, const(W))),  # 56 wide: the direct conv vectorizes
            bb.emit(relax.op.nn.conv2d(narrow, const(w3), padding=1)),  # 3x3 window
            bb.emit(relax.op.nn.conv2d(narrow, const(W), strides=2)),  # strided
        ])  # fmt: skip

    mod = module({"narrow": f32(1, 8, 7, 7), "wide": f32(1, 8, 56, 56)}, body)
    tvm.ir.assert_structural_equal(Conv1x1AsMatmul(mod), mod)


def test_pointwise_block_matches_onnxruntime():
    model = make_model(
        [helper.make_node("Conv", ["x", "w", "b"], ["c"]), helper.make_node("Relu", ["c"], ["y"])],
        [("x", TensorProto.FLOAT, [2, 8, 14, 14])],
        [("y", TensorProto.FLOAT, [2, 16, 14, 14])],
        {"w": W, "b": RNG.standard_normal(16).astype(np.float32)},
    )
    assert_matches_ort(model, tvmopt.compile(model))
