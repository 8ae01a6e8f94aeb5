"""Row-wise normalizations (backends/llvm/rule_row_reduce.py): softmax and LayerNorm computed
right against ONNX Runtime on AVX-512 and AVX2 code, scheduled by the rule where a row has a
vector-wide divisor (a softmax: whole vectors and a tail where it has none), and left to the
fallback otherwise."""

import numpy as np
import pytest
from onnx import TensorProto, helper

import tvmopt

from .helpers import assert_matches_ort, make_model

RNG = np.random.default_rng(0)
AVX2 = {"kind": "llvm", "mcpu": "x86-64-v3"}
TARGETS = pytest.mark.parametrize("target", [None, AVX2], ids=["host", "x86-64-v3"])


def rules_of(compiled) -> set[str]:
    return {record["rule"] for record in compiled.metadata.extra["kernels"].values()}


def masked_softmax(shape):
    """Softmax over attention scores plus a mask that is 0 or -10000, as BERT's."""
    mask = np.where(RNG.random((1, 1, 1, shape[-1])) < 0.2, -10000.0, 0.0).astype(np.float32)
    nodes = [helper.make_node("Add", ["x", "mask"], ["scores"]),
             helper.make_node("Softmax", ["scores"], ["y"], axis=-1)]  # fmt: skip
    return make_model(nodes, [("x", TensorProto.FLOAT, list(shape))],
                      [("y", TensorProto.FLOAT, list(shape))], {"mask": mask})  # fmt: skip


def masked_softmax_symbolic(shape):
    """masked_softmax with the mask's row as long as the scores' (symbolic where they are)."""
    nodes = [helper.make_node("Add", ["x", "mask"], ["scores"]),
             helper.make_node("Softmax", ["scores"], ["y"], axis=-1)]  # fmt: skip
    mask = [1, 1, 1, shape[-1]]
    inputs = [("x", TensorProto.FLOAT, list(shape)), ("mask", TensorProto.FLOAT, mask)]
    return make_model(nodes, inputs, [("y", TensorProto.FLOAT, list(shape))])


def residual_layer_norm(shape):
    width = shape[-1]
    rng = np.random.default_rng(width)  # the same weights for a symbolic model and its fixed twin
    weights = {"scale": rng.standard_normal(width).astype(np.float32),
               "bias": rng.standard_normal(width).astype(np.float32)}  # fmt: skip
    nodes = [helper.make_node("Add", ["x", "residual"], ["sum"]),
             helper.make_node("LayerNormalization", ["sum", "scale", "bias"], ["y"], axis=-1,
                              epsilon=1e-5)]  # fmt: skip
    inputs = [("x", TensorProto.FLOAT, list(shape)), ("residual", TensorProto.FLOAT, list(shape))]
    return make_model(nodes, inputs, [("y", TensorProto.FLOAT, list(shape))], weights, opset=17)


def log_softmax(shape):
    nodes = [helper.make_node("LogSoftmax", ["x"], ["y"], axis=-1)]
    return make_model(nodes, [("x", TensorProto.FLOAT, list(shape))],
                      [("y", TensorProto.FLOAT, list(shape))])  # fmt: skip


def feeds_for(model) -> dict:
    return {
        value.name: 3 * RNG.standard_normal([d.dim_value for d in value.type.tensor_type.shape.dim])
        .astype(np.float32)
        for value in model.graph.input
    }


@TARGETS
@pytest.mark.parametrize(
    "build, shape",
    [
        (masked_softmax, (1, 4, 32, 64)),  # attention scores: heads x tokens x tokens
        (masked_softmax, (2, 3, 24)),  # a row of 24: split by 12 on AVX-512, 8 on AVX2
        (residual_layer_norm, (2, 16, 96)),
        (residual_layer_norm, (1, 8, 768)),  # BERT-base's hidden width
        (log_softmax, (3, 40)),
    ],
)
def test_row_normalizations_match_onnx_runtime_and_vectorize_their_rows(build, shape, target):
    model = build(shape)
    compiled = tvmopt.compile(model, target=target)
    assert "RowReduction" in rules_of(compiled)
    assert_matches_ort(model, compiled, feeds_for(model))


@TARGETS
@pytest.mark.parametrize("length", [197, 23, 17, 9])
def test_a_softmax_row_with_no_vector_divisor_takes_vectors_and_a_tail(length, target):
    """ViT's 197 tokens (a prime): a sum of `lanes` partials over the row's whole vectors and a
    scalar tail (symbolic_softmax.py), where it fell back to TVM's unscheduled code."""
    model = masked_softmax((1, 2, 8, length))
    compiled = tvmopt.compile(model, target=target)
    assert "RowReduction" in rules_of(compiled)
    assert_matches_ort(model, compiled, feeds_for(model))


def test_a_row_without_a_vector_wide_divisor_is_left_to_the_fallback():
    model = log_softmax((8, 197))  # only softmax has the whole-vectors form
    compiled = tvmopt.compile(model)
    assert "RowReduction" not in rules_of(compiled)
    assert_matches_ort(model, compiled, feeds_for(model))


@TARGETS
def test_a_residual_sum_that_is_also_an_output_is_computed_apart(target):
    """x + r and LayerNorm(x + r) both returned, as a transformer's residual stream: the sum
    runs as a row-parallel loop of its own (TVM computes no output block at a loop)."""
    model = residual_layer_norm((1, 197, 96))
    model.graph.output.append(helper.make_tensor_value_info("sum", TensorProto.FLOAT,
                                                            [1, 197, 96]))  # fmt: skip
    compiled = tvmopt.compile(model, target=target)
    assert "RowReduction" in rules_of(compiled)
    assert_matches_ort(model, compiled, feeds_for(model))


def test_a_row_normalization_of_a_whole_vector_is_left_to_the_fallback():
    """LayerNorm over a 1-D tensor: its mean is a scalar block with no row loop to share
    (found by the differential fuzzer, seed 42: the rule failed on the missing loop)."""
    model = residual_layer_norm((420,))
    compiled = tvmopt.compile(model, opt_level=0)
    assert "RowReduction" not in rules_of(compiled)
    assert_matches_ort(model, compiled, feeds_for(model))


def symbolic(build, shape, length: int):
    """`build`'s model with every "n" in `shape` a symbolic dim, and the feeds at `length`."""
    model = build(shape)
    fixed = build([length if d == "n" else d for d in shape])
    return model, feeds_for(fixed)


@TARGETS
@pytest.mark.parametrize("length", [128, 77, 5])  # whole vectors, a remainder, less than one
@pytest.mark.parametrize("build, shape", [(log_softmax, [3, "n"]),
                                          (residual_layer_norm, [1, "n", 96]),
                                          (masked_softmax_symbolic, [1, 2, "n", "n"])])  # fmt: skip
def test_a_row_of_symbolic_length_is_vectorized_with_a_remainder(build, shape, length, target):
    """Softmax over a symbolic sequence length: element-wise blocks in whole vectors plus the
    last partial one, reductions sequential; right at every length, on AVX-512 and AVX2."""
    model, feeds = symbolic(build, shape, length)
    compiled = tvmopt.compile(model, target=target, dims={"n": (1, 512)})
    assert "RowReduction" in rules_of(compiled)
    assert_matches_ort(model, compiled, feeds)
