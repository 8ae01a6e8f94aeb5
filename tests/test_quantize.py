"""int8 post-training quantization: accuracy on a CNN trained here on scikit-learn's digits (a
real data set that ships with the package), every calibration method, skip and the accuracy
budget, calibration data sources, and the errors users hit."""

from __future__ import annotations

import io

import numpy as np
import onnx
import onnxruntime
import pytest

import tvmopt
from tvmopt.cli import main
from tvmopt.errors import InputError, OptionError
from tvmopt.passes.quantize.spec import QuantizeConfig

from .helpers import assert_matches_ort, inverted_residual_cnn, relu_model, residual_cnn

METHODS = ["minmax", "percentile", "entropy", "mse"]


def _digits():
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    images = (images / 16.0 - 0.5).astype(np.float32).reshape(-1, 1, 1, 8, 8)
    return images[:1400], labels[:1400], images[1400:], labels[1400:]


def _train_cnn(images, labels):
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(32 * 4 * 4, 64), torch.nn.ReLU(),
        torch.nn.Linear(64, 10),
    )  # fmt: skip
    x, y = torch.tensor(images[:, 0]), torch.tensor(labels)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(60):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        optimizer.step()
    buffer = io.BytesIO()
    torch.onnx.export(net.eval(), (x[:1],), buffer, input_names=["image"],
                      output_names=["logits"], dynamo=False)  # fmt: skip
    return onnx.load_from_string(buffer.getvalue())


@pytest.fixture(scope="module")
def digits():
    train_x, train_y, test_x, test_y = _digits()
    model = _train_cnn(train_x, train_y)
    calib = [{"image": image} for image in train_x[:100]]
    return model, calib, test_x, test_y


def _accuracy(run, images, labels) -> float:
    predictions = [int(np.argmax(run(image))) for image in images]
    return 100.0 * float(np.mean(np.array(predictions) == labels))


def _ort_accuracy(model, images, labels) -> float:
    session = onnxruntime.InferenceSession(model.SerializeToString())
    return _accuracy(lambda x: session.run(None, {"image": x})[0], images, labels)


@pytest.mark.parametrize("method", METHODS)
def test_int8_accuracy_within_one_point_of_fp32(digits, method):
    model, calib, test_x, test_y = digits
    fp32 = _ort_accuracy(model, test_x, test_y)
    assert fp32 > 90.0  # a real classifier, or the comparison means nothing
    compiled = tvmopt.compile(model, quantize="int8", calib=calib, calib_method=method)
    report = compiled.quantize_report
    assert [layer.quantized for layer in report.layers] == [True] * 4  # 2 convs, 2 dense
    int8 = _accuracy(lambda x: compiled.run({"image": x})["logits"], test_x, test_y)
    assert int8 >= fp32 - 1.0, f"{method}: int8 {int8:.1f}% vs fp32 {fp32:.1f}%"


def test_int8_outputs_close_to_onnxruntime_fp32(digits):
    model, calib, test_x, _ = digits
    compiled = tvmopt.compile(model, quantize="int8", calib=calib)
    assert compiled.metadata.quantization == "int8"
    session = onnxruntime.InferenceSession(model.SerializeToString())
    expected = session.run(None, {"image": test_x[0]})[0]
    actual = compiled.run({"image": test_x[0]})["logits"]
    cosine = float(expected.ravel() @ actual.ravel())
    cosine /= np.linalg.norm(expected) * np.linalg.norm(actual)
    assert cosine > 0.999
    assert not np.allclose(expected, actual, rtol=1e-6, atol=0)  # int8, not float32 again


def test_skip_keeps_a_layer_fp32(digits):
    model, calib, _, _ = digits
    first = next(n.name for n in model.graph.node if n.op_type == "Conv")
    compiled = tvmopt.compile(model, quantize="int8", calib=calib[:8], skip=[first])
    by_name = {layer.name: layer for layer in compiled.quantize_report.layers}
    assert by_name[first].quantized is False
    assert by_name[first].why_float == "skipped (skip)"
    assert sum(layer.quantized for layer in by_name.values()) == 3


def test_layers_stay_float_where_int8_would_be_slower(digits):
    """SSE4.2 has no int8 dot product (backends/llvm/cpu.py), and its int8 layers ran 4-7x
    slower than float32 (bench/results/isa/sse4.md): they stay float32, the report says why."""
    model, calib, test_x, _ = digits
    compiled = tvmopt.compile(model, quantize="int8", calib=calib[:8], target="x86-64-v2")
    report = compiled.quantize_report
    assert len(report.layers) == 4 and not any(layer.quantized for layer in report.layers)
    why = "sse4 (x86-64-v2) has no int8 dot product instruction; int8 would be slower than float32"
    assert {layer.why_float for layer in report.layers} == {why}
    assert why in report.table()
    assert_matches_ort(model, compiled, {"image": test_x[0]})


@pytest.mark.parametrize("weight_bits, expected", [(None, 7), (8, 8)])
def test_every_layer_is_int8_on_avx2_with_7_bit_weights_by_default(digits, weight_bits, expected):
    """AVX2's fast int8 step (vpmaddubsw) is exact on 7-bit weights: they are the default there,
    8 bits on request (vpmaddwd on int16). Either keeps the accuracy within one point."""
    model, calib, test_x, test_y = digits
    config = QuantizeConfig(weight_bits=weight_bits)
    compiled = tvmopt.compile(model, quantize="int8", calib=calib[:8], target="x86-64-v3",
                              quantize_config=config)  # fmt: skip
    report = compiled.quantize_report
    assert all(layer.quantized for layer in report.layers)
    assert report.weight_bits == expected and f"({expected}-bit weights)" in report.table()
    int8 = _accuracy(lambda x: compiled.run({"image": x})["logits"], test_x, test_y)
    assert int8 >= _ort_accuracy(model, test_x, test_y) - 1.0


def test_avx2_depth_8_step_matches_the_depth_4_step_bit_for_bit(digits, monkeypatch):
    """The layers whose input channels come in eights run on the depth-8 vpmaddubsw step, their
    7-bit weights fitted to its bound (backends/llvm/int8_quads.py); with that step taken away
    the same weights run on the depth-4 one: both are exact, so the outputs are the same bits,
    and close to ONNX Runtime's float32."""
    from tvmopt.backends.llvm import backend, cpu

    model, calib, test_x, _ = digits
    parts = []
    pack = backend.pack_weight
    monkeypatch.setattr(backend, "pack_weight", lambda *a: parts.append(a[-1]) or pack(*a))
    outputs = []
    for depth_8 in (True, False):
        if not depth_8:
            monkeypatch.setattr(cpu, "int8_quads_fit", lambda quantized: False)
        compiled = tvmopt.compile(model, quantize="int8", calib=calib[:8], target="x86-64-v3")
        outputs.append(compiled.run({"image": test_x[0]})["logits"])
    assert 2 in parts[: len(parts) // 2] and 2 not in parts[len(parts) // 2 :]
    np.testing.assert_array_equal(outputs[0], outputs[1])
    expected = onnxruntime.InferenceSession(model.SerializeToString()).run(
        None, {"image": test_x[0]}
    )[0]
    cosine = float(expected.ravel() @ outputs[0].ravel())
    assert cosine / (np.linalg.norm(expected) * np.linalg.norm(outputs[0])) > 0.999


def test_weights_stay_8_bit_where_the_cpu_has_vnni(digits):
    """Compiled for a CPU this one need not be: calibration and the report's measurements run
    on this CPU's kernels (they ran the target's code, and died with SIGILL on a Zen 3)."""
    model, calib, _, _ = digits
    vnni = {"kind": "llvm", "mcpu": "icelake-server"}
    compiled = tvmopt.compile(model, quantize="int8", calib=calib[:8], target=vnni)
    assert compiled.quantize_report.weight_bits == 8


def test_accuracy_budget_falls_back_to_fp32(digits):
    from tvmopt.passes.quantize.spec import Percentile

    model, calib, _, _ = digits
    harsh = Percentile(percentile=60.0)  # clips most of each range: int8 disagrees with fp32
    # the budget alone: the default fallback would keep the clipped matmuls float32 first
    unbudgeted = QuantizeConfig(fallback_sqnr_db=None)
    loose = tvmopt.compile(model, quantize="int8", calib=calib, calib_method=harsh,
                           quantize_config=unbudgeted)  # fmt: skip
    assert loose.quantize_report.top1_disagreement > 0.0
    config = QuantizeConfig(max_accuracy_drop=0.0, fallback_sqnr_db=None)
    strict = tvmopt.compile(model, quantize="int8", calib=calib, calib_method=harsh,
                            quantize_config=config)  # fmt: skip
    report = strict.quantize_report
    assert report.top1_disagreement == 0.0
    assert not all(layer.quantized for layer in report.layers)
    assert {r.why_float for r in report.layers if not r.quantized} == {
        "over the accuracy budget (max_accuracy_drop)"
    }


def test_calibration_from_npz_file_and_directory(digits, tmp_path):
    model, calib, _, _ = digits
    for index, sample in enumerate(calib[:4]):
        np.savez(tmp_path / f"sample_{index}.npz", **sample)
    for source in (tmp_path, tmp_path / "sample_0.npz"):
        compiled = tvmopt.compile(model, quantize="int8", calib=source)
        assert compiled.quantize_report.samples == (4 if source == tmp_path else 1)


@pytest.mark.parametrize(
    "calib, message",
    [
        ([{"pixels": np.zeros((1, 1, 8, 8), np.float32)}], "unknown input 'pixels'"),
        ([{"image": np.zeros((1, 1, 4, 4), np.float32)}], "must have shape (1, 1, 8, 8)"),
        ([], "holds no samples"),
        ("/no/such/calib", "calibration data not found"),
    ],
)
def test_bad_calibration_data(digits, calib, message):
    model = digits[0]
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        tvmopt.compile(model, quantize="int8", calib=calib)


def test_bad_quantize_options(digits):
    model, calib, _, _ = digits
    with pytest.raises(OptionError, match="unknown calibration method 'kl'"):
        tvmopt.compile(model, quantize="int8", calib=calib, calib_method="kl")
    with pytest.raises(OptionError, match="cannot skip 'conv9'"):
        tvmopt.compile(model, quantize="int8", calib=calib, skip=["conv9"])
    with pytest.raises(OptionError, match="needs calibration data"):
        tvmopt.compile(model, quantize="int8")
    with pytest.raises(OptionError, match="quantize must be 'int8'"):
        tvmopt.compile(model, quantize="int4", calib=calib)
    with pytest.raises(OptionError, match="weight_bits must be 7 or 8, got 4"):
        tvmopt.compile(model, quantize="int8", calib=calib,
                       quantize_config=QuantizeConfig(weight_bits=4))  # fmt: skip


def test_cli_quantized_compile_and_report(digits, tmp_path, capsys):
    model, calib, _, _ = digits
    path = tmp_path / "digits.onnx"
    onnx.save(model, path)
    data = tmp_path / "calib"
    data.mkdir()
    for index, sample in enumerate(calib[:8]):
        np.savez(data / f"{index}.npz", **sample)
    out = tmp_path / "digits.so"
    args = [str(path), "--quantize", "int8", "--calib", str(data), "--calib-method", "mse"]
    assert main(["compile", *args, "-o", str(out)]) == 0
    assert tvmopt.load(out).run({"image": calib[0]["image"]})["logits"].shape == (1, 10)
    assert main(["quantize-report", str(path), "--calib", str(data)]) == 0
    assert "SQNR" in capsys.readouterr().out


def test_cli_bad_quantize_input_exits_2(digits, tmp_path, capsys):
    model, _, _, _ = digits
    path = tmp_path / "digits.onnx"
    onnx.save(model, path)
    out = tmp_path / "never.so"
    args = ["compile", str(path), "--quantize", "int8", "--calib", str(tmp_path / "none")]
    assert main([*args, "-o", str(out)]) == 2
    assert not out.exists()
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "calibration data not found" in err


@pytest.mark.parametrize("command", [["compile", "--quantize", "int8"], ["quantize-report"]])
def test_cli_int8_without_calib_exits_2(tmp_path, capsys, command):
    path = tmp_path / "relu.onnx"
    onnx.save(relu_model(), path)
    out = tmp_path / "never.so"
    output = ["-o", str(out)] if command[0] == "compile" else []
    assert main([command[0], str(path), *command[1:], *output]) == 2
    assert not out.exists()
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "needs calibration data: give --calib" in err


def test_tensor_between_int8_layers_is_uint8(digits, tmp_path, monkeypatch):
    """conv -> relu -> conv: the first layer's epilogue quantizes for the second (requantize.py),
    so the tensor between them is uint8; the second conv's output feeds a flatten (a reshape
    the matmul reads alone), also requantized, and the results equal float-between ones."""
    import re

    import tvmopt.passes.quantize.convert as convert

    model, calib, test_x, _ = digits
    compiled = tvmopt.compile(model, quantize="int8", calib=calib[:8], dump_ir=tmp_path)
    scheduled = "".join(p.read_text() for p in tmp_path.glob("*ApplyDefaultSchedule*"))
    producers = re.findall(r"def (fused_int8_conv2d\w*_cast\w*)\(", scheduled)
    assert producers, "no int8 layer writes uint8"
    monkeypatch.setattr(convert, "requantizable", lambda func, plans: {})
    float_between = tvmopt.compile(model, quantize="int8", calib=calib[:8])
    for image in test_x[:8]:
        np.testing.assert_array_equal(compiled.run({"image": image})["logits"],
                                      float_between.run({"image": image})["logits"])  # fmt: skip


def test_residual_cnn_runs_channels_last_uint8_and_matches_onnxruntime(tmp_path):
    """Between int8 layers, residual add and max pool included, tensors are NHWC uint8 and no
    transpose is left; the output stays close to ONNX Runtime's fp32."""
    import re

    model = residual_cnn()
    rng = np.random.default_rng(1)
    calib = [{"x": rng.standard_normal((1, 3, 32, 32)).astype(np.float32)} for _ in range(16)]
    compiled = tvmopt.compile(model, quantize="int8", calib=calib, dump_ir=tmp_path)
    # the last build is the int8 model (calibration and probing builds come first)
    scheduled = sorted(tmp_path.glob("*ApplyDefaultSchedule*"))[-1].read_text()
    # even the image is read NCHW by the first conv, which transposes it as it quantizes
    assert not re.findall(r"def (\w*transpose\w*)\(", scheduled)
    assert re.search(r"def max_pool2d\w*\(\w+: T.Buffer\([^\n]*\"uint8\"\), pool", scheduled)
    _assert_close_to_onnxruntime(model, compiled, calib[:4])


def test_mobilenet_shaped_cnn_runs_depthwise_int8_channels_last(tmp_path):
    """Depthwise convs are int8 layers too, named after their ONNX node: the whole network runs
    channels last on uint8, no transpose left, and stays close to ONNX Runtime's fp32."""
    import re

    model = inverted_residual_cnn()
    rng = np.random.default_rng(1)
    calib = [{"x": rng.standard_normal((1, 3, 32, 32)).astype(np.float32)} for _ in range(16)]
    compiled = tvmopt.compile(model, quantize="int8", calib=calib, dump_ir=tmp_path)
    kinds = {layer.name: layer.kind for layer in compiled.quantize_report.layers}
    assert kinds["depthwise_a"] == kinds["depthwise_b"] == "depthwise"
    scheduled = sorted(tmp_path.glob("*ApplyDefaultSchedule*"))[-1].read_text()
    assert len(re.findall(r"def (\w*int8_depthwise\w*)\(", scheduled)) == 2
    assert not re.findall(r"def (\w*transpose\w*)\(", scheduled)
    _assert_close_to_onnxruntime(model, compiled, calib[:4])


def _assert_close_to_onnxruntime(model, compiled, samples) -> None:
    """int8 against ONNX Runtime's fp32, by the cosine of each output."""
    session = onnxruntime.InferenceSession(model.SerializeToString())
    for sample in samples:
        expected = session.run(None, sample)[0].ravel()
        actual = compiled.run(sample)["y"].ravel()
        cosine = float(expected @ actual) / (np.linalg.norm(expected) * np.linalg.norm(actual))
        assert cosine > 0.999, cosine


@pytest.mark.parametrize("reader", ["Concat", "Min"])
def test_a_tensor_an_int8_layer_shares_with_a_tuple_reader_stays_float(reader):
    """TVM imports Concat as concat((a, b)) and Min of two inputs as min(stack((a, b))): the
    requantization missed readers inside a tuple and handed them a uint8 tensor (a crash, or
    a compile error; found by the differential fuzzer, tests/fuzz)."""
    from onnx import TensorProto, helper

    from .helpers import make_model

    rng = np.random.default_rng(0)
    attrs = {"axis": 0} if reader == "Concat" else {}
    model = make_model(
        [helper.make_node("Relu", ["x"], ["t"]),
         helper.make_node("MatMul", ["t", "w"], ["y"]),
         helper.make_node(reader, ["t", "c"], ["z"], **attrs)],
        [("x", TensorProto.FLOAT, [4, 8])],
        [("y", TensorProto.FLOAT, [4, 6]), ("z", TensorProto.FLOAT, [8 if attrs else 4, 8])],
        {"w": rng.standard_normal((8, 6)).astype(np.float32),
         "c": rng.standard_normal((4, 8)).astype(np.float32)},
    )  # fmt: skip
    calib = [{"x": rng.standard_normal((4, 8)).astype(np.float32)} for _ in range(8)]
    compiled = tvmopt.compile(model, quantize="int8", calib=calib)
    assert compiled.quantize_report.layers[0].quantized
    feeds = {"x": rng.standard_normal((4, 8)).astype(np.float32)}
    session = onnxruntime.InferenceSession(model.SerializeToString())
    expected_y, expected_z = session.run(["y", "z"], feeds)
    actual = compiled.run(feeds)
    np.testing.assert_allclose(actual["z"], expected_z, rtol=1e-6)  # float32, as written
    assert np.abs(actual["y"] - expected_y).max() < 0.05 * np.abs(expected_y).max()


def test_a_pad_after_an_int8_conv_pads_with_zeros():
    """FuseOps put the Pad into the int8 conv's kernel, whose tile loops covered the conv's rows
    only: the padded row was never written (found by the differential fuzzer, tests/fuzz)."""
    from onnx import TensorProto, helper

    from .helpers import make_model

    rng = np.random.default_rng(0)
    model = make_model(
        [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
         helper.make_node("Pad", ["c", "pads"], ["y"])],
        [("x", TensorProto.FLOAT, [1, 4, 4, 6])],
        [("y", TensorProto.FLOAT, [1, 9, 5, 6])],
        {"w": rng.standard_normal((9, 4, 3, 3)).astype(np.float32) * 0.3,
         "pads": np.array([0, 0, 0, 0, 0, 0, 1, 0], np.int64)},
    )  # fmt: skip
    calib = [{"x": rng.standard_normal((1, 4, 4, 6)).astype(np.float32)} for _ in range(8)]
    compiled = tvmopt.compile(model, quantize="int8", calib=calib)
    feeds = {"x": rng.standard_normal((1, 4, 4, 6)).astype(np.float32)}
    expected = onnxruntime.InferenceSession(model.SerializeToString()).run(None, feeds)[0]
    actual = compiled.run(feeds)["y"]
    assert np.all(actual[:, :, 4] == 0)
    assert np.abs(actual - expected).max() < 0.05 * np.abs(expected).max()
