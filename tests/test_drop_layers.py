"""Whole layers dropped from exported transformers (the shallower student of distillation): the
ONNX model without layer k computes what the torch model without layer k computes, for both
exporters, and what the dropped layer alone needed (its weights) is gone."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

import tvmopt
from tvmopt.errors import InputError
from tvmopt.pruning.structured import drop_layers, find_layers

from . import hf_models
from .helpers import assert_matches_ort, ort_outputs, relu_model


def _without_layer(name: str, layer: int):
    module = hf_models.MODELS[name]()
    blocks = module.model.transformer.h if name == "gpt2" else _encoder_layers(module)
    del blocks[layer]
    return module


def _encoder_layers(module):
    model = module.encoder
    return model.transformer.layer if hasattr(model, "transformer") else model.encoder.layer


SLOW = pytest.mark.slow  # 8-13 s per dynamo export


@pytest.mark.parametrize(
    "name, dynamo",
    [
        ("bert", False), ("distilbert", False), ("gpt2", False),
        # GPT-2's dynamo export leaves the fused QKV's Split without a layer path
        pytest.param("gpt2", True, marks=SLOW),
        pytest.param("bert", True, marks=SLOW), pytest.param("distilbert", True, marks=SLOW),
    ],
)  # fmt: skip
def test_dropping_a_layer_computes_the_torch_model_without_it(name, dynamo):
    model = hf_models.export(name, dynamo=dynamo)
    assert list(find_layers(model.graph)) == [0, 1]
    dropped = drop_layers(model, [0])
    onnx.checker.check_model(dropped)
    feeds = hf_models.feeds(name, 2, 7)
    with torch.no_grad():
        expected = _without_layer(name, 0)(*(torch.from_numpy(v) for v in feeds.values()))
    got = next(iter(ort_outputs(dropped, feeds).values()))
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-4, atol=1e-5)
    assert _weights(dropped) < _weights(model)
    assert [v.name for v in dropped.graph.input] == [v.name for v in model.graph.input]


def _weights(model: onnx.ModelProto) -> int:
    return sum(int(np.prod(t.dims)) for t in model.graph.initializer)


def test_the_student_compiles_and_matches_onnxruntime():
    dropped = drop_layers(hf_models.export("bert", dynamo=False), [1])
    feeds = hf_models.feeds("bert", 1, 8)
    compiled = tvmopt.compile(dropped, dims={"batch": (1, 2), "seq": (1, 16)})
    assert_matches_ort(dropped, compiled, feeds)


@pytest.mark.parametrize(
    "model, drop, fragment",
    [
        (relu_model(), [0], "found no layers to drop"),
        ("bert", [2], "no layer 2 to drop: the model's layers are 0, 1"),
        ("bert", [], "no layer (none given)"),
        ("bert", [0, 1], "would leave none"),
    ],
)
def test_bad_requests_are_one_line_errors(model, drop, fragment):
    model = hf_models.export(model, dynamo=False) if isinstance(model, str) else model
    with pytest.raises(InputError, match=None) as error:
        drop_layers(model, drop)
    assert fragment in str(error.value) and "\n" not in str(error.value)
