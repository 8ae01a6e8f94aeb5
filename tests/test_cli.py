"""The command line: each command end to end, and every bad input as one line with exit status 2."""

import os
import subprocess
import sys

import numpy as np
import pytest

from tvmopt.cli import main
from tvmopt.demo import INPUT_NAME, INPUT_SHAPE

from .helpers import ort_outputs, relu_model


def cli(capsys, *args):
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def assert_fails_cleanly(status, err, fragment, leftover=None):
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tvmopt: error: "), err
    assert fragment in lines[0], lines[0]
    if leftover is not None:
        assert not leftover.exists()
        assert not list(leftover.parent.glob(f".{leftover.name}*")), "temporary file left behind"


def test_compile_run_with_inputs_and_outputs(capsys, tmp_path, demo_path, demo_model):
    library = tmp_path / "demo.so"
    status, out, _ = cli(capsys, "compile", demo_path, "-o", library)
    assert status == 0 and library.is_file() and "wrote" in out
    image = np.random.default_rng(0).standard_normal(INPUT_SHAPE).astype(np.float32)
    np.savez(tmp_path / "in.npz", **{INPUT_NAME: image})
    status, out, _ = cli(
        capsys, "run", library, "--inputs", tmp_path / "in.npz", "--output", tmp_path / "out.npz",
        "--repeat", 3,
    )  # fmt: skip
    assert status == 0 and "median" in out and "(3 runs)" in out
    produced = np.load(tmp_path / "out.npz")["probs"]
    expected = ort_outputs(demo_model, {INPUT_NAME: image})["probs"]
    np.testing.assert_allclose(produced, expected, atol=1e-5)


def test_run_without_inputs_uses_random_ones(capsys, demo_library):
    status, out, _ = cli(capsys, "run", demo_library, "--repeat", 2)
    assert status == 0 and "output probs: float32[1, 10]" in out


def test_compile_pins_input_shapes(capsys, tmp_path):
    import onnx

    onnx.save(relu_model(shape=("batch", 3)), tmp_path / "relu.onnx")
    status, out, _ = cli(
        capsys, "compile", tmp_path / "relu.onnx", "-o", tmp_path / "r.so", "--input-shape", "x=4,3"
    )
    assert status == 0 and "x (float32[4,3])" in out


def test_inspect_lists_ops_inputs_and_gaps(capsys, demo_path):
    status, out, _ = cli(capsys, "inspect", demo_path)
    assert status == 0
    assert "input  image (float32[1,3,64,64])" in out
    assert "Conv" in out and "unsupported: none" in out


def test_demo_prints_match_and_both_latencies(capsys):
    status, out, _ = cli(capsys, "demo", "--repeat", 3)
    assert status == 0
    assert "(match)" in out and "tvmopt latency" in out and "onnxruntime latency" in out


@pytest.mark.parametrize("how", ["console_script", "module"])
def test_entry_points(how, tmp_path, demo_path):
    command = (
        [os.path.join(os.path.dirname(sys.executable), "tvmopt")]
        if how == "console_script"
        else [sys.executable, "-m", "tvmopt"]
    )
    result = subprocess.run(
        [*command, "compile", tmp_path / "missing.onnx"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip() == f"tvmopt: error: model file not found: {tmp_path / 'missing.onnx'}"
    )


def test_missing_model_file(capsys, tmp_path):
    out = tmp_path / "m.so"
    status, _, err = cli(capsys, "compile", tmp_path / "nope.onnx", "-o", out)
    assert_fails_cleanly(status, err, "model file not found", out)


def test_not_an_onnx_file(capsys, tmp_path):
    (tmp_path / "x.onnx").write_bytes(b"\x00\x01garbage" * 10)
    out = tmp_path / "m.so"
    status, _, err = cli(capsys, "compile", tmp_path / "x.onnx", "-o", out)
    assert_fails_cleanly(status, err, "not an ONNX model", out)


def test_truncated_onnx_file(capsys, tmp_path, demo_path):
    data = open(demo_path, "rb").read()
    (tmp_path / "t.onnx").write_bytes(data[: len(data) // 2])
    out = tmp_path / "m.so"
    status, _, err = cli(capsys, "compile", tmp_path / "t.onnx", "-o", out)
    assert_fails_cleanly(status, err, "t.onnx", out)


def test_unsupported_op(capsys, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from .helpers import make_model

    model = make_model(
        [helper.make_node("StringNormalizer", ["x"], ["y"], name="normalizer")],
        [("x", TensorProto.STRING, [3])],
        [("y", TensorProto.STRING, [3])],
    )
    onnx.save(model, tmp_path / "strings.onnx")
    out = tmp_path / "m.so"
    status, _, err = cli(capsys, "compile", tmp_path / "strings.onnx", "-o", out)
    assert_fails_cleanly(status, err, "StringNormalizer (node normalizer)", out)


def test_unnamed_dim_without_shape(capsys, tmp_path):
    import onnx

    onnx.save(relu_model(shape=(None, 3)), tmp_path / "relu.onnx")
    out = tmp_path / "m.so"
    status, _, err = cli(capsys, "compile", tmp_path / "relu.onnx", "-o", out)
    assert_fails_cleanly(status, err, "--input-shape x=", out)


def test_unknown_target(capsys, tmp_path, demo_path):
    out = tmp_path / "m.so"
    status, _, err = cli(capsys, "compile", demo_path, "-o", out, "--target", "quantum")
    assert_fails_cleanly(status, err, "unknown target 'quantum'", out)


@pytest.mark.parametrize(
    "command, options, fragment",
    [
        ("compile", ["--target", '{"kind": "llvm",'], "is not valid JSON"),
        ("compile", ["--target", '{"kind": "cuda"', "--arch", "sm_90"], "is not valid JSON"),
        ("compile", ["--target", "[1, 2]"], "unknown target '[1, 2]'"),
        ("compile", ["--target", '{"kind": "tpu"}'], "unknown target kind 'tpu'"),
        ("compile", ["--target", "cpu", "--arch", "sm_90"], "--arch is for --target cuda"),
        ("tune", ["--db", "DB", "--trials", "2", "--target", '{"kind":'], "is not valid JSON"),
    ],
)
def test_bad_target_text_is_one_line(capsys, tmp_path, demo_path, command, options, fragment):
    """The target is parsed once (backends/target.py), the same way for every command."""
    out = tmp_path / "m.so"
    options = [str(tmp_path / "db") if option == "DB" else option for option in options]
    status, _, err = cli(capsys, command, demo_path, "-o" if command == "compile" else "--seed",
                         out if command == "compile" else 0, *options)  # fmt: skip
    assert_fails_cleanly(status, err, fragment, out)
    assert not (tmp_path / "db").exists()


def test_inspect_shows_what_a_library_records(capsys, demo_library):
    status, out, _ = cli(capsys, "inspect", demo_library)
    assert status == 0
    for line in ("backend: llvm", "precision: fp32", "quantization: none",
                 "input  image (float32[1,3,64,64])", "output probs (float32[1,10])"):  # fmt: skip
        assert line in out, out


@pytest.mark.parametrize(
    "array, fragment",
    [
        ({"img": np.zeros(INPUT_SHAPE, np.float32)}, "unknown input 'img'"),
        ({INPUT_NAME: np.zeros((2, 3, 64, 64), np.float32)}, "must have shape"),
        ({INPUT_NAME: np.zeros(INPUT_SHAPE, np.int32)}, "must have dtype float32, got int32"),
    ],
)
def test_wrong_run_inputs(capsys, tmp_path, demo_library, array, fragment):
    np.savez(tmp_path / "in.npz", **array)
    out = tmp_path / "out.npz"
    status, _, err = cli(
        capsys, "run", demo_library, "--inputs", tmp_path / "in.npz", "--output", out
    )
    assert_fails_cleanly(status, err, fragment, out)


def test_inputs_file_missing_or_corrupt(capsys, tmp_path, demo_library):
    status, _, err = cli(capsys, "run", demo_library, "--inputs", tmp_path / "none.npz")
    assert_fails_cleanly(status, err, "inputs file not found")
    (tmp_path / "bad.npz").write_text("nope")
    status, _, err = cli(capsys, "run", demo_library, "--inputs", tmp_path / "bad.npz")
    assert_fails_cleanly(status, err, "is not a .npz")


def test_missing_library(capsys, tmp_path):
    status, _, err = cli(capsys, "run", tmp_path / "gone.so")
    assert_fails_cleanly(status, err, "compiled model not found")


def test_bad_input_shape_argument(capsys, demo_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["compile", demo_path, "--input-shape", "x=1,a"])
    assert exit_info.value.code == 2
    assert "expected NAME=D0,D1" in capsys.readouterr().err
