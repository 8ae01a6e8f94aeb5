"""expand_functions: ops TVM 0.27 cannot import become their ONNX function bodies."""

import onnx
import pytest
from onnx import TensorProto, helper, shape_inference

import tvmopt
from tvmopt.frontend.expand_functions import EXPANDED_DOMAIN, expand_functions
from tvmopt.frontend.support import supported_ops

from .helpers import assert_matches_ort, make_model

F = TensorProto.FLOAT
Q_SHAPE, MASK_SHAPE = [2, 4, 8, 16], [2, 4, 8, 8]  # batch, heads, sequence, head size


def attention_model() -> onnx.ModelProto:
    """ai.onnx Attention (opset 23): torch's dynamo exporter writes SDPA as this op."""
    return make_model(
        [helper.make_node("Attention", ["q", "k", "v", "mask"], ["y"])],
        [("q", F, Q_SHAPE), ("k", F, Q_SHAPE), ("v", F, Q_SHAPE), ("mask", F, MASK_SHAPE)],
        [("y", F, Q_SHAPE)],
        opset=23,
    )


def celu_model() -> onnx.ModelProto:
    return make_model(
        [helper.make_node("Celu", ["x"], ["y"], alpha=0.5)],
        [("x", F, [2, 3])],
        [("y", F, [2, 3])],
    )


def inferred(model: onnx.ModelProto) -> onnx.ModelProto:
    return shape_inference.infer_shapes(model, data_prop=True)


def test_attention_is_expanded_and_inlined():
    expanded = expand_functions(inferred(attention_model()))
    ops = {node.op_type for node in expanded.graph.node}
    assert "Attention" not in ops and {"MatMul", "Softmax"} <= ops
    assert not expanded.functions
    assert EXPANDED_DOMAIN not in {o.domain for o in expanded.opset_import}
    onnx.checker.check_model(expanded)


def test_ops_tvm_imports_are_left_alone():
    # Gelu has an ONNX function body too, but TVM converts it: no expansion, not even a copy
    model = inferred(
        make_model(
            [helper.make_node("Gelu", ["x"], ["y"], approximate="tanh")],
            [("x", F, [2, 3])],
            [("y", F, [2, 3])],
            opset=20,
        )
    )
    assert expand_functions(model) is model


def test_ops_without_a_function_body_stay_for_the_support_check():
    model = make_model(
        [helper.make_node("StringNormalizer", ["x"], ["y"])],
        [("x", TensorProto.STRING, [2])],
        [("y", TensorProto.STRING, [2])],
    )
    assert [node.op_type for node in expand_functions(inferred(model)).graph.node] == [
        "StringNormalizer"
    ]
    with pytest.raises(tvmopt.UnsupportedOpError, match="StringNormalizer"):
        tvmopt.compile(model)


def test_tvm_alone_sends_onnx_attention_to_the_contrib_converter():
    from tvm.relax.frontend.onnx import from_onnx

    with pytest.raises(KeyError, match="num_heads"):  # com.microsoft.Attention's attribute
        from_onnx(attention_model())


def test_tvm_has_no_celu_converter():
    assert "Celu" not in supported_ops()


@pytest.mark.parametrize("build", [attention_model, celu_model], ids=["attention", "celu"])
def test_expanded_ops_match_onnxruntime(build):
    model = build()
    assert_matches_ort(model, tvmopt.compile(model))
