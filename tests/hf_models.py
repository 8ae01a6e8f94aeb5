"""Tiny Hugging Face models with seeded random weights, exported as users export them.

Each model is built from a transformers config (2 layers, hidden 64; nothing is downloaded)
and wrapped in a module whose forward takes and returns plain tensors, the form
torch.onnx.export needs. Both exporters get dynamic batch and sequence axes (and a dynamic past
for GPT-2 with its cache).
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import torch
import transformers
from torch import nn

HIDDEN, HEADS, LAYERS, VOCAB = 64, 4, 2, 100
BATCH, SEQ, PAST = 2, 8, 5  # the shapes traced at export


def _seeded(model_class, config):
    torch.manual_seed(0)
    model = model_class(config).eval()
    model.config.return_dict = True
    return model


def _encoder_config(config_class, **extra):
    return config_class(
        vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
        intermediate_size=4 * HIDDEN, max_position_embeddings=128, **extra,
    )  # fmt: skip


class LastHiddenState(nn.Module):
    """An encoder's token embeddings: (input_ids, attention_mask) -> last_hidden_state."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids, attention_mask):
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


class MeanPooled(LastHiddenState):
    """sentence-transformers' MiniLM: token embeddings averaged over the unmasked tokens."""

    def forward(self, input_ids, attention_mask):
        tokens = super().forward(input_ids, attention_mask)
        weights = attention_mask.unsqueeze(-1).to(tokens.dtype)
        return (tokens * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


class Gpt2Logits(nn.Module):
    """GPT2LMHeadModel without a cache: (input_ids, attention_mask) -> logits."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        output = self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        return output.logits


class Gpt2WithPast(Gpt2Logits):
    """GPT2LMHeadModel with its cache as flat tensors: (input_ids, attention_mask over past and
    new tokens, past_key_0, past_value_0, ...) -> (logits, present_key_0, present_value_0, ...)."""

    def forward(self, input_ids, attention_mask, *past):
        pairs = [(past[2 * i], past[2 * i + 1]) for i in range(len(past) // 2)]
        cache = transformers.DynamicCache(pairs)
        output = self.model(input_ids=input_ids, attention_mask=attention_mask,
                            past_key_values=cache, use_cache=True)  # fmt: skip
        layers = output.past_key_values.layers
        return (output.logits, *[t for layer in layers for t in (layer.keys, layer.values)])


def bert():
    config = _encoder_config(transformers.BertConfig)
    return LastHiddenState(_seeded(transformers.BertModel, config))


def minilm():
    config = _encoder_config(transformers.BertConfig, hidden_act="gelu")
    config.hidden_size, config.intermediate_size = 96, 384  # MiniLM's narrow layers, in small
    config.num_attention_heads = 6
    return MeanPooled(_seeded(transformers.BertModel, config))


def roberta():
    config = _encoder_config(transformers.RobertaConfig, pad_token_id=1)
    return LastHiddenState(_seeded(transformers.RobertaModel, config))


def distilbert():
    config = transformers.DistilBertConfig(
        vocab_size=VOCAB, dim=HIDDEN, n_layers=LAYERS, n_heads=HEADS, hidden_dim=4 * HIDDEN,
        max_position_embeddings=128,
    )  # fmt: skip
    return LastHiddenState(_seeded(transformers.DistilBertModel, config))


def _gpt2_config():
    # GPT-2's token ids 50256 for begin and end are outside this vocabulary
    return transformers.GPT2Config(vocab_size=VOCAB, n_embd=HIDDEN, n_layer=LAYERS, n_head=HEADS,
                                   n_positions=128, bos_token_id=0, eos_token_id=0)  # fmt: skip


def gpt2():
    return Gpt2Logits(_seeded(transformers.GPT2LMHeadModel, _gpt2_config()))


def gpt2_with_past():
    return Gpt2WithPast(_seeded(transformers.GPT2LMHeadModel, _gpt2_config()))


ENCODERS = {"bert": bert, "distilbert": distilbert, "roberta": roberta, "minilm": minilm}
MODELS = {**ENCODERS, "gpt2": gpt2, "gpt2_past": gpt2_with_past}
HEAD_DIM = HIDDEN // HEADS


def past_names() -> list[str]:
    return [f"past_{kind}_{i}" for i in range(LAYERS) for kind in ("key", "value")]


def present_names() -> list[str]:
    return [f"present_{kind}_{i}" for i in range(LAYERS) for kind in ("key", "value")]


def feeds(name: str, batch: int, seq: int, past: int = 0, seed: int = 0) -> dict:
    """Inputs for `name`: token ids, a mask with padding on the last row (so that it matters),
    and for GPT-2 with its cache a past of `past` positions."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(3, VOCAB, (batch, seq)).astype(np.int64)
    mask = np.ones((batch, past + seq), np.int64)
    if name != "gpt2_past" and seq > 2:
        mask[-1, past + seq // 2 + 1 :] = 0
    result = {"input_ids": ids, "attention_mask": mask}
    if name == "gpt2_past":
        shape = (batch, HEADS, past, HEAD_DIM)
        result |= {n: rng.standard_normal(shape).astype(np.float32) for n in past_names()}
    return result


def example_args(name: str) -> tuple:
    arrays = feeds(name, BATCH, SEQ, PAST if name == "gpt2_past" else 0)
    return tuple(torch.from_numpy(a) for a in arrays.values())


def _names(name: str):
    inputs = ["input_ids", "attention_mask"]
    if name == "gpt2_past":
        return inputs + past_names(), ["logits", *present_names()]
    return inputs, ["logits" if name == "gpt2" else "output"]


def _dynamic_axes(name: str, inputs, outputs) -> dict:
    axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "total"}}
    if name != "gpt2_past":
        axes["attention_mask"] = {0: "batch", 1: "seq"}
    for tensor in [*past_names(), *present_names()] if name == "gpt2_past" else []:
        axes[tensor] = {0: "batch", 2: "past" if tensor.startswith("past") else "total"}
    return axes


def _dynamic_shapes(name: str) -> tuple:
    batch, seq = torch.export.Dim("batch", max=64), torch.export.Dim("seq", max=120)
    ids = {0: batch, 1: seq}
    if name != "gpt2_past":
        return (ids, ids)
    past, total = torch.export.Dim("past", max=120), torch.export.Dim("total", max=240)
    # forward(input_ids, attention_mask, *past): the past is one argument, a tuple
    return (ids, {0: batch, 1: total}, tuple([{0: batch, 2: past}] * (2 * LAYERS)))


def export(name: str, dynamo: bool, opset: int = 18, attention: str | None = None):
    """`name` exported with dynamic batch and sequence (and past) dims by either exporter, its
    attention implementation `attention` if given ("eager": the matmul-softmax-matmul that ONNX
    Runtime's optimizer fuses into Attention; transformers 5's default, sdpa, it does not)."""
    module, args = MODELS[name](), example_args(name)
    if attention is not None:
        next(iter(module.children())).set_attn_implementation(attention)
    inputs, outputs = _names(name)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            program = torch.onnx.export(
                module, args, input_names=inputs, output_names=outputs, dynamo=True,
                opset_version=opset, dynamic_shapes=_dynamic_shapes(name),
            )  # fmt: skip
            return program.model_proto
        buffer = io.BytesIO()
        torch.onnx.export(
            module, args, buffer, input_names=inputs, output_names=outputs, dynamo=False,
            opset_version=opset, dynamic_axes=_dynamic_axes(name, inputs, outputs),
        )  # fmt: skip
        return onnx.load_model_from_string(buffer.getvalue())
