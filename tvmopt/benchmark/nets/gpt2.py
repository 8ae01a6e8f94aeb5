"""A GPT-2-style decoder written by hand, with a KV cache in its inputs and outputs: token +
position embeddings, causal masked multi-head attention, tanh-GELU MLP, pre-LayerNorm residuals,
an LM head tied to the token embedding. GPT-2 small is vocab 50257, hidden 768, 12 layers,
12 heads, 1024 positions.

The module takes `input_ids` (batch, seq) and one past key and value per layer, each (batch,
heads, past, head_dim), and returns the logits (batch, seq, vocab) and the present keys and
values (the past with this call's seq appended). Positions are past..past+seq-1, read from the
past's length inside the graph, so one exported graph serves the prompt pass (past 0) and
every decode step (seq 1).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class GPT2Config:
    vocab: int = 50257
    hidden: int = 768
    layers: int = 12
    heads: int = 12
    max_positions: int = 1024

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


GPT2_SMALL = GPT2Config()
# vocab 250, not whole panels of 32 columns: the packed LM head is cut back, as GPT-2's 50257
TINY = GPT2Config(vocab=250, hidden=64, layers=2, heads=4, max_positions=128)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPT2Config):
        super().__init__()
        self.heads, self.head_dim = config.heads, config.head_dim
        self.qkv = nn.Linear(config.hidden, 3 * config.hidden)
        self.out = nn.Linear(config.hidden, config.hidden)

    def forward(self, x, past_key, past_value, allowed):
        batch, seq, hidden = x.shape
        qkv = self.qkv(x).reshape(batch, seq, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        key = torch.cat([past_key, qkv[1]], dim=2)
        value = torch.cat([past_value, qkv[2]], dim=2)
        scores = qkv[0] @ key.transpose(-1, -2) / math.sqrt(self.head_dim)
        scores = torch.where(allowed, scores, torch.finfo(torch.float32).min)
        context = torch.softmax(scores, dim=-1) @ value
        return self.out(context.transpose(1, 2).reshape(batch, seq, hidden)), key, value


class DecoderLayer(nn.Module):
    def __init__(self, config: GPT2Config):
        super().__init__()
        hidden = config.hidden
        self.norm1, self.norm2 = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.attention = CausalSelfAttention(config)
        self.mlp = nn.Sequential(
            nn.Linear(hidden, 4 * hidden),
            nn.GELU(approximate="tanh"),
            nn.Linear(4 * hidden, hidden),
        )

    def forward(self, x, past_key, past_value, allowed):
        attended, key, value = self.attention(self.norm1(x), past_key, past_value, allowed)
        x = x + attended
        return x + self.mlp(self.norm2(x)), key, value


class GPT2Decoder(nn.Module):
    """(input_ids, past_key_0, past_value_0, ...) -> (logits, present_key_0, ...)."""

    def __init__(self, config: GPT2Config = GPT2_SMALL):
        super().__init__()
        self.config = config
        self.tokens = nn.Embedding(config.vocab, config.hidden)
        self.positions = nn.Embedding(config.max_positions, config.hidden)
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.layers))
        self.norm = nn.LayerNorm(config.hidden)

    def forward(self, input_ids, *past):
        seq, past_length = input_ids.shape[1], past[0].shape[2]
        positions = _positions(input_ids, past_length)
        x = self.tokens(input_ids) + self.positions(positions)
        # query i sits at position past + i and sees keys 0..past + i
        keys = torch.arange(past_length + seq, device=input_ids.device)
        allowed = keys[None, :] <= positions[:, None]
        presents = []
        for index, layer in enumerate(self.layers):
            x, key, value = layer(x, past[2 * index], past[2 * index + 1], allowed)
            presents += [key, value]
        logits = self.norm(x) @ self.tokens.weight.T  # the LM head is the token embedding
        return (logits, *presents)


def _positions(input_ids, past_length):
    """past..past+seq-1, as a cumulative sum over the ids' row, not `arange(past, past + seq)`
    (HF's form): TVM 0.27's ONNX importer loses that Range's shape (seq,) and then fails on
    the attention's Shape/Gather; `arange(seq) + past` keeps it, but FuseOps then defines
    `past` twice in the fused kernel (FuseTIR: "VarRemapGet(source) == nullptr")."""
    return torch.ones_like(input_ids[0]).cumsum(0) - 1 + past_length


def seeded(config: GPT2Config, seed: int = 0, std: float = 0.02) -> GPT2Decoder:
    """GPT-2's initialization (normal weights of std 0.02, zero biases), from `seed`. Tests
    take a larger `std`: a small model's tokens then depend on more than the last one."""
    torch.manual_seed(seed)
    model = GPT2Decoder(config).eval()
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=std)
        if isinstance(module, nn.Linear):
            nn.init.zeros_(module.bias)
    return model


def input_names(config: GPT2Config) -> list[str]:
    return ["input_ids", *_per_layer("past", config.layers)]


def output_names(config: GPT2Config) -> list[str]:
    return ["logits", *_per_layer("present", config.layers)]


def _per_layer(prefix: str, layers: int) -> list[str]:
    return [f"{prefix}_{kind}_{i}" for i in range(layers) for kind in ("key", "value")]


def export(model: GPT2Decoder, opset: int = 17):
    """The ONNX model (torchscript exporter) with dynamic batch, seq and past axes."""
    import onnx

    config = model.config
    ids = torch.randint(0, config.vocab, (1, 2))  # seq 2, past 3: no size 0 or 1 to specialize
    past = [torch.zeros(1, config.heads, 3, config.head_dim) for _ in range(2 * config.layers)]
    axes = {"input_ids": {0: "batch", 1: "seq"}, "logits": {0: "batch", 1: "seq"}}
    axes |= {name: {0: "batch", 2: "past"} for name in input_names(config)[1:]}
    axes |= {name: {0: "batch", 2: "total"} for name in output_names(config)[1:]}
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(model, (ids, *past), buffer, input_names=input_names(config),
                          output_names=output_names(config), dynamic_axes=axes,
                          opset_version=opset, dynamo=False)  # fmt: skip
    return onnx.load_model_from_string(buffer.getvalue())
