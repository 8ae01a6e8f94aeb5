"""ONNX Runtime's com.microsoft transformer ops (converters_contrib_*.py): hand-built graphs of
each op with symbolic batch and sequence dims, and ONNX Runtime's transformer optimizer's own
graphs of tiny BERT and GPT-2, all against ONNX Runtime."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import tvmopt

from .helpers import assert_matches_ort, make_model
from .test_cli import assert_fails_cleanly, cli

MS = "com.microsoft"
HIDDEN, HEADS, VOCAB = 32, 4, 50
HEAD = HIDDEN // HEADS
F32, I32 = TensorProto.FLOAT, TensorProto.INT32
DIMS = {"batch": "1..4", "seq": "1..32"}
STEP_DIMS = {**DIMS, "past": "0..32", "total": "1..64"}


def weights(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)

    def normal(*shape, scale=0.3):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    return {
        "words": normal(VOCAB, HIDDEN), "positions": normal(64, HIDDEN),
        "segments": normal(2, HIDDEN),
        "gamma": 1 + normal(HIDDEN, scale=0.1), "beta": normal(HIDDEN, scale=0.1),
        "qkv": normal(HIDDEN, 3 * HIDDEN), "qkv_bias": normal(3 * HIDDEN, scale=0.1),
        "dense": normal(HIDDEN, HIDDEN), "dense_bias": normal(HIDDEN, scale=0.1),
    }  # fmt: skip


def encoder_block(**attention) -> onnx.ModelProto:
    """EmbedLayerNormalization -> Attention (masked) -> SkipLayerNormalization (its sum too) ->
    BiasGelu, FastGelu and Gelu branches, as ONNX Runtime's optimizer writes BERT."""
    node = helper.make_node
    nodes = [
        node("EmbedLayerNormalization", ["ids", "segment_ids", "words", "positions", "segments",
             "gamma", "beta", "mask"], ["embedded", "mask_index"], domain=MS, epsilon=1e-5),
        node("Attention", ["embedded", "qkv", "qkv_bias", "mask"], ["attended"], domain=MS,
             num_heads=HEADS, **attention),
        node("SkipLayerNormalization", ["attended", "embedded", "gamma", "beta", "dense_bias"],
             ["normed", "", "", "residual"], domain=MS, epsilon=1e-5),
        node("MatMul", ["normed", "dense"], ["projected"]),
        node("BiasGelu", ["projected", "dense_bias"], ["bias_gelu"], domain=MS),
        node("FastGelu", ["projected", "dense_bias"], ["fast_gelu"], domain=MS),
        node("Gelu", ["residual"], ["gelu"], domain=MS),
    ]  # fmt: skip
    tokens = ["batch", "seq"]
    inputs = [("ids", I32, tokens), ("segment_ids", I32, tokens), ("mask", I32, tokens)]
    outputs = [(name, F32, [*tokens, HIDDEN]) for name in ("bias_gelu", "fast_gelu", "gelu")]
    return make_model(nodes, inputs, [*outputs, ("mask_index", I32, ["batch"])], weights(),
                      extra_opsets={MS: 1})  # fmt: skip


def decoder_step() -> onnx.ModelProto:
    """MultiHeadAttention with a bias, a past, a padding mask and a causal mask, then the
    LayerNormalization that ONNX Runtime's optimizer writes now (ONNX Runtime 1.32 no longer
    runs com.microsoft's), as a GPT-2 decoder step."""
    node = helper.make_node
    nodes = [
        node("MatMul", ["x", "dense"], ["query"]),
        node("MultiHeadAttention", ["query", "x", "x", "qkv_bias", "mask", "", "past_key",
             "past_value"], ["attended", "present_key", "present_value"], domain=MS,
             num_heads=HEADS, unidirectional=1),
        node("LayerNormalization", ["attended", "gamma", "beta"], ["y"], epsilon=1e-5),
    ]  # fmt: skip
    cache = ["batch", HEADS, "past", HEAD]
    present = ["batch", HEADS, "total", HEAD]
    inputs = [("x", F32, ["batch", "seq", HIDDEN]), ("mask", I32, ["batch", "total"]),
              ("past_key", F32, cache), ("past_value", F32, cache)]  # fmt: skip
    outputs = [("y", F32, ["batch", "seq", HIDDEN]), ("present_key", F32, present),
               ("present_value", F32, present)]  # fmt: skip
    return make_model(nodes, inputs, outputs, weights(), extra_opsets={MS: 1})


def token_feeds(batch: int, seq: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, seq), np.int32)
    mask[-1, seq // 2 + 1 :] = 0
    ids = rng.integers(0, VOCAB, (batch, seq)).astype(np.int32)
    return {"ids": ids, "segment_ids": (ids % 2).astype(np.int32), "mask": mask}


def step_feeds(batch: int, seq: int, past: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, past + seq), np.int32)
    mask[-1, : past // 2] = 0  # left padding in the past of the last row
    cache = rng.standard_normal((batch, HEADS, past, HEAD)).astype(np.float32)
    return {"x": rng.standard_normal((batch, seq, HIDDEN)).astype(np.float32), "mask": mask,
            "past_key": cache, "past_value": cache[:, :, ::-1].copy()}  # fmt: skip


@pytest.mark.parametrize("attention", [
    pytest.param({}, id="bidirectional", marks=pytest.mark.slow),
    pytest.param({"unidirectional": 1, "scale": 0.2}, id="causal-scaled"),
])  # fmt: skip
def test_encoder_ops_match_onnxruntime_at_every_length(attention):
    model = encoder_block(**attention)
    compiled = tvmopt.compile(model, dims=DIMS)
    for batch, seq in [(1, 1), (2, 7), (3, 16)]:
        assert_matches_ort(model, compiled, token_feeds(batch, seq))


def test_decoder_ops_match_onnxruntime_with_and_without_a_past():
    model = decoder_step()
    compiled = tvmopt.compile(model, dims=STEP_DIMS)
    for batch, seq, past in [(1, 5, 0), (2, 1, 6), (2, 3, 9)]:
        assert_matches_ort(model, compiled, step_feeds(batch, seq, past))


@pytest.mark.parametrize(
    "op, attrs, fragment",
    [
        ("Attention", {"do_rotary": 1}, "Attention with do_rotary=1 is not supported"),
        ("EmbedLayerNormalization", {"mask_index_type": 0},
         "EmbedLayerNormalization with mask_index_type=0 is not supported"),
    ],
)  # fmt: skip
def test_an_unsupported_attribute_is_one_line(capsys, tmp_path, op, attrs, fragment):
    model = encoder_block()
    target = next(n for n in model.graph.node if n.op_type == op)
    target.attribute.extend(helper.make_attribute(k, v) for k, v in attrs.items())
    path, library = tmp_path / "model.onnx", tmp_path / "model.so"
    onnx.save(model, path)
    status, _, err = cli(capsys, "compile", path, "-o", library, "--dim", "batch=1..2",
                         "--dim", "seq=1..8")  # fmt: skip
    assert_fails_cleanly(status, err, fragment, leftover=library)


# ONNX Runtime's optimizer on tiny Hugging Face exports: SkipLayerNormalization, BiasGelu or
# FastGelu and LayerNormalization replace the exported subgraphs; with eager attention (the
# optimizer does not recognize sdpa's), Attention and EmbedLayerNormalization too
NORMS = {"SkipLayerNormalization"}
OPTIMIZED = [
    pytest.param("bert", "bert", "eager", NORMS | {"BiasGelu", "Attention",
                 "EmbedLayerNormalization"}, id="bert-eager"),
    pytest.param("bert", "bert", None, NORMS | {"BiasGelu"}, id="bert", marks=pytest.mark.slow),
    pytest.param("gpt2_past", "gpt2", None, NORMS | {"FastGelu"}, id="gpt2",
                 marks=pytest.mark.slow),
]  # fmt: skip


@pytest.mark.parametrize("name, model_type, attention, expected_ops", OPTIMIZED)
def test_onnxruntime_optimized_exports_match_onnxruntime(
    tmp_path, name, model_type, attention, expected_ops
):
    pytest.importorskip("transformers")
    from onnxruntime.transformers.optimizer import optimize_model

    from . import hf_models

    path = tmp_path / "exported.onnx"
    onnx.save(hf_models.export(name, dynamo=False, attention=attention), path)
    optimized = optimize_model(str(path), model_type=model_type, num_heads=hf_models.HEADS,
                               hidden_size=hf_models.HIDDEN).model  # fmt: skip
    assert expected_ops <= {n.op_type for n in optimized.graph.node if n.domain == MS}
    dims = {"batch": "1..4", "seq": "1..64"}
    if name == "gpt2_past":
        dims |= {"past": "0..64", "total": "1..128"}
    compiled = tvmopt.compile(optimized, dims=dims)
    runs = [(1, 1, 0), (2, 7, 0), (3, 20, 0)] + ([(2, 3, 5)] if name == "gpt2_past" else [])
    for batch, seq, past in runs:
        assert_matches_ort(optimized, compiled, hf_models.feeds(name, batch, seq, past))
