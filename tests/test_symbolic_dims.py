"""Symbolic dims: a model exported with dynamic batch and sequence axes compiles once, serves
every size in the declared ranges, and refuses the rest with one line naming the limit."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import tvmopt
from tvmopt.cli import main

from .helpers import assert_matches_ort, make_model, relu_model
from .test_cli import assert_fails_cleanly, cli

torch = pytest.importorskip("torch")  # the exports under test come from torch.onnx

from .models_torch import export_dynamic, masked_bert  # noqa: E402

DIMS = {"batch": (1, 2), "seq": (1, 64)}
# (batch, sequence) pairs served by one library
RUN_SHAPES = [(1, 1), (1, 7), (2, 16), (2, 64)]


@pytest.fixture(scope="module", params=[False, True], ids=["torchscript", "dynamo"])
def exported(request):
    module, args = masked_bert()
    return export_dynamic(module, args, dynamo=request.param)


@pytest.fixture(scope="module")
def compiled(exported):
    return tvmopt.compile(exported, dims=DIMS)


def feeds(batch: int, seq: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, 100, (batch, seq)).astype(np.int64)
    mask = np.ones((batch, seq), np.int64)
    mask[-1, seq // 2 + 1 :] = 0  # padding on the last row, so the mask matters
    return {"input_ids": ids, "attention_mask": mask}


def test_dims_stay_symbolic(compiled):
    assert [spec.shape for spec in compiled.inputs] == [("batch", "seq")] * 2
    assert compiled.outputs[0].shape == ("batch", "seq", 64)
    assert compiled.metadata.dims == {"batch": [1, 2], "seq": [1, 64]}


def test_symbolic_matmuls_keep_the_register_blocked_schedule(compiled):
    # the dense layers' rows are batch x seq: padded to whole blocks, not left to the fallback
    kernels = compiled.metadata.extra["kernels"]
    rules = [str(kernel["rule"]) for kernel in kernels.values()]
    # 5 kernels (the packed dense layers of one width share theirs); before padding, the
    # fallback took them all
    assert rules.count("Matmul") >= 5, rules
    assert all(str(k["rule"]) == "Matmul" for name, k in kernels.items() if "matmul" in name)


@pytest.mark.parametrize("batch, seq", RUN_SHAPES)
def test_one_library_matches_onnxruntime_at_every_length(exported, compiled, batch, seq):
    assert_matches_ort(exported, compiled, feeds(batch, seq))


def test_exported_library_keeps_ranges_and_runs(exported, compiled, tmp_path):
    path = tmp_path / "dynamic.so"
    compiled.export(path)
    loaded = tvmopt.load(path)
    assert loaded.metadata.dims == {"batch": [1, 2], "seq": [1, 64]}
    for batch, seq in [(2, 5), (1, 33)]:
        assert_matches_ort(exported, loaded, feeds(batch, seq))


@pytest.mark.parametrize(
    "batch, seq, fragment",
    [
        (1, 65, "input 'input_ids' axis 1 (seq) is 65, outside the range 1..64"),
        (3, 8, "input 'input_ids' axis 0 (batch) is 3, outside the range 1..2"),
    ],
)
def test_run_outside_the_range_names_the_limit(compiled, batch, seq, fragment):
    with pytest.raises(tvmopt.InputError) as err:
        compiled.run(feeds(batch, seq))
    assert str(err.value) == fragment + " it was compiled for"


def test_inputs_must_agree_on_a_shared_dim(compiled):
    inputs = feeds(1, 8)
    inputs["attention_mask"] = inputs["attention_mask"][:, :7]
    with pytest.raises(tvmopt.InputError, match="'attention_mask' axis 1 \\(seq\\) is 7, but "
                       "input 'input_ids' has seq = 8"):  # fmt: skip
        compiled.run(inputs)


def test_undeclared_dims_take_any_size_from_one():
    model = relu_model(shape=("batch", 3))
    compiled = tvmopt.compile(model)
    assert compiled.metadata.dims == {"batch": [1, None]}
    for batch in (1, 5):
        assert_matches_ort(model, compiled, {"x": np.ones((batch, 3), np.float32) - batch})
    with pytest.raises(tvmopt.InputError, match="symbolic dim 'batch'"):
        compiled.benchmark()  # random inputs need sizes for it


@pytest.mark.parametrize(
    "dims, fragment",
    [
        ({"seq": (1, 8)}, "--dim names 'seq', which no input has; symbolic dims: batch"),
        ({"batch": (4, 2)}, "0 <= lo <= hi, got 4..2"),
        ({"batch": "a..b"}, "LO..HI of whole numbers"),
    ],
)
def test_bad_dims_are_refused(dims, fragment):
    with pytest.raises(tvmopt.OptionError, match=fragment):
        tvmopt.compile(relu_model(shape=("batch", 3)), dims=dims)


def test_unnamed_dims_still_need_a_shape():
    model = make_model(
        [helper.make_node("Relu", ["x"], ["y"])],
        [("x", TensorProto.FLOAT, [None, 3])],
        [("y", TensorProto.FLOAT, [None, 3])],
    )
    with pytest.raises(tvmopt.ShapeError, match="unknown \\(unnamed\\) dims"):
        tvmopt.compile(model)


def test_cli_dim_recorded_and_inspected(capsys, tmp_path):
    onnx.save(relu_model(shape=("batch", 3)), tmp_path / "relu.onnx")
    out = tmp_path / "relu.so"
    status, _, err = cli(capsys, "compile", tmp_path / "relu.onnx", "-o", out, "--dim",
                         "batch=1..8")  # fmt: skip
    assert status == 0, err
    status, text, _ = cli(capsys, "inspect", out)
    assert status == 0 and "dim    batch: 1..8\n" in text
    assert tvmopt.load(out).metadata.dims == {"batch": [1, 8]}


def test_cli_unknown_dim_exits_2(capsys, tmp_path):
    onnx.save(relu_model(shape=("batch", 3)), tmp_path / "relu.onnx")
    out = tmp_path / "relu.so"
    status, _, err = cli(capsys, "compile", tmp_path / "relu.onnx", "-o", out, "--dim",
                         "nosuch=1..4")  # fmt: skip
    assert_fails_cleanly(status, err, "--dim names 'nosuch', which no input has", out)


@pytest.mark.parametrize("spec", ["batch=8..1", "batch=a..b", "batch=-1..4", "batch", "=1..2"])
def test_cli_bad_dim_spec_exits_2(capsys, spec):
    with pytest.raises(SystemExit) as exit_info:  # argparse's usage error, before any import
        main(["compile", "model.onnx", "--dim", spec])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "expected NAME=LO..HI with 0 <= LO <= HI" in err[0]
    assert repr(spec) in err[0]


def test_cli_run_outside_the_range_exits_2(capsys, tmp_path):
    onnx.save(relu_model(shape=("batch", 3)), tmp_path / "relu.onnx")
    out = tmp_path / "relu.so"
    status, _, err = cli(capsys, "compile", tmp_path / "relu.onnx", "-o", out, "--dim",
                         "batch=1..2")  # fmt: skip
    assert status == 0, err
    np.savez(tmp_path / "in.npz", x=np.ones((3, 3), np.float32))
    status, _, err = cli(capsys, "run", out, "--inputs", tmp_path / "in.npz")
    assert_fails_cleanly(status, err, "input 'x' axis 0 (batch) is 3, outside the range 1..2")
