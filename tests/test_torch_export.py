"""PyTorch models through both torch.onnx exporters, compiled by tvmopt.

Every compiled model is checked twice: against ONNX Runtime running the same exported ONNX model,
and against torch eager. Models come from models_torch.py: a hand-written BERT-style encoder,
`nn.TransformerEncoder` and a small CNN.
"""

import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")  # an optional dependency: only these tests need it

import tvmopt  # noqa: E402
from tvmopt.frontend.torch_export import to_onnx  # noqa: E402
from tvmopt.reference import FP32_TOLERANCE, max_relative_error  # noqa: E402

from .helpers import ort_outputs  # noqa: E402
from .models_torch import MODELS, export, export_dynamic  # noqa: E402

EXPORTERS = {"torchscript": False, "dynamo": True}


def eager_outputs(module, args) -> list:
    with torch.no_grad():
        outputs = module(*args)
    return [t.numpy() for t in (outputs if isinstance(outputs, tuple) else (outputs,))]


def feeds_for(compiled, args) -> dict:
    return {spec.name: arg.numpy() for spec, arg in zip(compiled.inputs, args, strict=True)}


def assert_close(actual: list, expected: list, reference: str) -> None:
    assert len(actual) == len(expected)
    for index, (got, want) in enumerate(zip(actual, expected, strict=True)):
        error = max_relative_error(got, want)
        assert error <= FP32_TOLERANCE, f"output {index} vs {reference}: error {error:.3g}"


def check(compiled, proto, module, args) -> None:
    """Compare with ONNX Runtime on the exported model, then with torch eager."""
    feeds = feeds_for(compiled, args)
    actual = list(compiled.run(feeds).values())
    assert_close(actual, list(ort_outputs(proto, feeds).values()), "onnxruntime")
    assert_close(actual, eager_outputs(module, args), "torch eager")


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("name", MODELS)
def test_exported_model_matches_onnxruntime_and_eager(name, exporter):
    module, args = MODELS[name]()
    proto = to_onnx(module, args, dynamo=EXPORTERS[exporter])
    check(tvmopt.compile(proto), proto, module, args)


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("name", ["bert", "transformer_encoder"])
def test_dynamic_shape_export_compiles_with_pinned_shapes(name, exporter):
    module, args = MODELS[name]()
    proto = export_dynamic(module, args, dynamo=EXPORTERS[exporter])
    assert "Shape" in {node.op_type for node in proto.graph.node}  # the chains under test
    inputs = zip(proto.graph.input, args, strict=True)
    shapes = {value.name: tuple(arg.shape) for value, arg in inputs}
    check(tvmopt.compile(proto, input_shapes=shapes), proto, module, args)


# model, opset, and the op that opset brings into its export
RECENT_OPSETS = {
    "gelu-20": ("bert", 20, "Gelu"),
    "attention-23": ("transformer_encoder", 23, "Attention"),
}


@pytest.mark.parametrize("case", RECENT_OPSETS)
def test_recent_opset_export_matches_eager(case):
    # No ONNX Runtime check: its CPU Attention rejects the [batch, heads, 1, seq] padding mask
    # dynamo writes for scaled_dot_product_attention ("inconsistent q_sequence_length"), a mask
    # shape the spec allows. TVM alone maps ai.onnx Attention to com.microsoft's converter.
    name, opset, new_op = RECENT_OPSETS[case]
    module, args = MODELS[name]()
    proto = to_onnx(module, args, dynamo=True, opset=opset)
    assert new_op in {node.op_type for node in proto.graph.node}
    compiled = tvmopt.compile(proto)
    actual = list(compiled.run(feeds_for(compiled, args)).values())
    assert_close(actual, eager_outputs(module, args), "torch eager")


# TorchScript exporter options that change the graph's structure
TORCHSCRIPT_OPTIONS = {
    "local_functions": {"export_modules_as_functions": True},
    "initializers_as_inputs": {"keep_initializers_as_inputs": True},
}


@pytest.mark.parametrize("option", TORCHSCRIPT_OPTIONS)
def test_torchscript_export_options(option):
    module, args = MODELS["cnn"]()
    proto = export(module, args, dynamo=False, **TORCHSCRIPT_OPTIONS[option])
    compiled = tvmopt.compile(proto)
    assert [spec.name for spec in compiled.inputs] == ["image"]  # weights are not inputs
    check(compiled, proto, module, args)


def test_compile_accepts_a_torch_module():
    module, args = MODELS["bert"]()
    compiled = tvmopt.compile(module, example_inputs=args)
    assert [spec.name for spec in compiled.inputs] == ["input_ids"]  # named after forward()
    actual = list(compiled.run(feeds_for(compiled, args)).values())
    assert_close(actual, eager_outputs(module, args), "torch eager")


def test_a_torch_module_without_example_inputs_is_refused():
    module, _ = MODELS["cnn"]()
    with pytest.raises(tvmopt.TvmoptError, match="example_inputs"):
        tvmopt.compile(module)


def test_export_leaves_the_mha_fastpath_setting_alone():
    # in eval mode nn.TransformerEncoder calls a fused kernel the TorchScript exporter cannot
    # export; to_onnx turns that fast path off while exporting, and back on afterwards
    module, args = MODELS["transformer_encoder"]()
    proto = to_onnx(module, args, dynamo=False)
    assert "MatMul" in {node.op_type for node in proto.graph.node}
    assert torch.backends.mha.get_fastpath_enabled()


def test_import_tvmopt_does_not_import_torch():
    code = "import sys, tvmopt; assert 'torch' not in sys.modules, 'torch was imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
