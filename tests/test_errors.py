"""Every bad input gives one TvmoptError (also a matching builtin) naming the problem."""

import numpy as np
import pytest
from onnx import TensorProto, helper

import tvmopt
from tvmopt.demo import INPUT_NAME, INPUT_SHAPE

from .helpers import make_model, relu_model


def assert_one_line(error: pytest.ExceptionInfo, *fragments: str):
    message = str(error.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_missing_file(tmp_path):
    with pytest.raises(tvmopt.ModelLoadError) as err:
        tvmopt.compile(tmp_path / "nope.onnx")
    assert isinstance(err.value, ValueError)
    assert_one_line(err, "not found", "nope.onnx")


def test_file_that_is_not_onnx(tmp_path):
    path = tmp_path / "notes.onnx"
    path.write_text("these are my notes, not a model\n")
    with pytest.raises(tvmopt.ModelLoadError) as err:
        tvmopt.compile(path)
    assert_one_line(err, "notes.onnx", "not an ONNX model")


@pytest.mark.parametrize("fraction", [0.3, 0.5, 0.9])
def test_truncated_onnx_file(tmp_path, demo_path, fraction):
    data = open(demo_path, "rb").read()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(tvmopt.ModelLoadError) as err:
        tvmopt.compile(path)
    assert_one_line(err, "truncated.onnx")


def test_unsupported_ops_are_listed_together_with_node_names():
    model = make_model(
        [
            helper.make_node("StringNormalizer", ["x"], ["d"], name="norm_a"),
            helper.make_node("RegexFullMatch", ["x"], ["c1"], pattern="a", name="match_a"),
            helper.make_node("RegexFullMatch", ["d"], ["c2"], pattern="b", name="match_b"),
            helper.make_node("Unsqueeze", ["d", "axes"], ["y"], name="fine"),
        ],
        [("x", TensorProto.STRING, [3])],
        [("y", TensorProto.STRING, [1, 3]), ("c1", TensorProto.BOOL, [3]),
         ("c2", TensorProto.BOOL, [3])],
        initializers={"axes": np.array([0], np.int64)},
        opset=26,
    )
    with pytest.raises(tvmopt.UnsupportedOpError) as err:
        tvmopt.compile(model)
    assert isinstance(err.value, NotImplementedError)
    assert_one_line(err, "RegexFullMatch (nodes match_a, match_b)",
                    "StringNormalizer (node norm_a)")
    assert "Unsqueeze" not in str(err.value)


def test_custom_domain_op_is_unsupported():
    model = make_model(
        [helper.make_node("FusedThing", ["x"], ["y"], domain="com.example", name="mine")],
        [("x", TensorProto.FLOAT, [2])],
        [("y", TensorProto.FLOAT, [2])],
        extra_opsets={"com.example": 1},
    )
    with pytest.raises(tvmopt.UnsupportedOpError) as err:
        tvmopt.compile(model)
    assert_one_line(err, "com.example.FusedThing (node mine)")


def test_unnamed_dim_without_shape():
    model = relu_model(shape=(None, 3))
    with pytest.raises(tvmopt.ShapeError) as err:
        tvmopt.compile(model)
    assert_one_line(err, "x (float32[?,3])", "--input-shape x=")


@pytest.mark.parametrize(
    "shapes, fragment",
    [
        ({"y": (1, 3)}, "'y', which is not an input"),
        ({"x": (1, 3, 4)}, "rank 2"),
        ({"x": (5, 4)}, "axis 1"),
        ({"x": (1, -3)}, "non-negative ints"),
    ],
)
def test_bad_input_shapes(shapes, fragment):
    with pytest.raises(tvmopt.ShapeError) as err:
        tvmopt.compile(relu_model(shape=("batch", 3)), input_shapes=shapes)
    assert_one_line(err, fragment)


@pytest.mark.parametrize(
    "target, fragment",
    [
        ("tpu9000", "unknown target 'tpu9000'"),
        ({"kind": "llvm", "mcpu": "pentium-9000"}, "pentium-9000"),
        ('{"kind": "llvm", "nonsense": 1}', "nonsense"),
        ("{not json", "not valid JSON"),
    ],
)
def test_unknown_target(target, fragment):
    with pytest.raises(tvmopt.TargetError) as err:
        tvmopt.compile(relu_model(), target=target)
    assert isinstance(err.value, ValueError)
    assert_one_line(err, fragment)


def image(dtype=np.float32, shape=INPUT_SHAPE):
    return np.zeros(shape, dtype=dtype)


@pytest.mark.parametrize(
    "feeds, fragment",
    [
        ({"img": image()}, "unknown input 'img'"),
        ({}, "missing input 'image'"),
        (
            {INPUT_NAME: image(shape=(1, 3, 32, 32))},
            "must have shape (1, 3, 64, 64), got (1, 3, 32, 32)",
        ),
        ({INPUT_NAME: image(dtype=np.float64)}, "must have dtype float32, got float64"),
        ([image(), image()], "expected 1 inputs, got 2"),
    ],
)
def test_wrong_inputs_at_run_time(compiled_demo, feeds, fragment):
    with pytest.raises(tvmopt.InputError) as err:
        compiled_demo.run(feeds)
    assert_one_line(err, fragment)


def test_load_missing_library(tmp_path):
    with pytest.raises(tvmopt.ArtifactError) as err:
        tvmopt.load(tmp_path / "missing.so")
    assert_one_line(err, "not found")


def test_load_file_that_is_not_a_library(tmp_path):
    path = tmp_path / "fake.so"
    path.write_text("not a shared library")
    with pytest.raises(tvmopt.ArtifactError) as err:
        tvmopt.load(path)
    assert_one_line(err, "fake.so")


def test_export_into_missing_directory(compiled_demo, tmp_path):
    with pytest.raises(tvmopt.ArtifactError) as err:
        compiled_demo.export(tmp_path / "no" / "such" / "dir" / "m.so")
    assert_one_line(err, "output directory does not exist")


def test_errors_share_one_base():
    for cls in (
        tvmopt.ModelLoadError, tvmopt.UnsupportedOpError, tvmopt.ShapeError,
        tvmopt.TargetError, tvmopt.InputError, tvmopt.ArtifactError, tvmopt.CompileError,
    ):  # fmt: skip
        assert issubclass(cls, tvmopt.TvmoptError)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"precision": "fp16"}, "precision 'fp16' is for CUDA targets"),
        ({"cuda_graph": True}, "cuda_graph is for CUDA targets"),
    ],
)
def test_cuda_options_on_a_cpu_fail_before_calibration(options, message):
    def calibration():  # a wrong option must not cost a calibration pass first
        raise AssertionError("calibration data was read")
        yield

    from tvmopt.errors import OptionError

    with pytest.raises(OptionError, match=message):
        tvmopt.compile(relu_model(), quantize="int8", calib=calibration(), **options)
