"""ClipAsMinMax: clip with PrimValue bounds becomes maximum/minimum with tensor bounds, which
ToMixedPrecision can convert (MobileNetV2's ReLU6 in fp16)."""

import shutil

import numpy as np
import pytest
import tvm
from onnx import TensorProto, helper
from tvm import relax

import tvmopt
from tvmopt.backends.cuda.fatbin import device_code
from tvmopt.passes.clip_as_min_max import ClipAsMinMax

from .helpers import make_model
from .passes_helpers import const, f32, module, run_relax


def relu6(bb, x):
    return relax.op.clip(x, relax.prim_value(0.0), relax.prim_value(6.0))


def test_clip_becomes_maximum_then_minimum():
    result = ClipAsMinMax(module({"x": f32(2, 8)}, relu6))
    expected = module(
        {"x": f32(2, 8)},
        lambda bb, x: relax.op.minimum(bb.emit(relax.op.maximum(x, const(0.0))), const(6.0)),
    )
    tvm.ir.assert_structural_equal(result, expected)


def test_the_result_computes_the_same_clip():
    x = np.linspace(-4, 10, 16, dtype=np.float32).reshape(2, 8)
    out = run_relax(ClipAsMinMax(module({"x": f32(2, 8)}, relu6)), x)
    np.testing.assert_array_equal(out, np.clip(x, 0, 6))


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="needs the CUDA toolkit")
def test_relu6_convs_compile_in_fp16_for_cuda(tmp_path):
    weights = np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32)
    model = make_model(
        [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
         helper.make_node("Clip", ["c", "lo", "hi"], ["y"])],
        [("x", TensorProto.FLOAT, (1, 3, 8, 8))], [("y", TensorProto.FLOAT, (1, 4, 8, 8))],
        initializers={"w": weights, "lo": np.float32(0), "hi": np.float32(6)},
    )  # fmt: skip
    compiled = tvmopt.compile(model, target={"kind": "cuda", "arch": "sm_90"}, precision="fp16")
    compiled.export(tmp_path / "relu6.so")
    assert device_code(tmp_path / "relu6.so") == [("sass", "sm_90")]
