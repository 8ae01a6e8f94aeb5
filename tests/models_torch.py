"""Small seeded PyTorch models whose ONNX exports carry real exporter patterns.

Each builder returns `(module, example_inputs)`. The models are tiny so that exporting, compiling
and running them takes seconds, but they keep the shape-computation subgraphs that full-size
exports carry: attention masks built from the inputs, positions from `arange(seq_len)`, head
splits from `x.size()`, padding masks inside `nn.TransformerEncoder`.
"""

from __future__ import annotations

import io
import math
import warnings

import onnx
import torch
from torch import nn

from tvmopt.frontend.torch_export import input_names, without_mha_fastpath

VOCAB, HIDDEN, HEADS, LAYERS, SEQ, BATCH = 100, 64, 4, 2, 16, 2


def _input_ids(seed: int = 0) -> torch.Tensor:
    """Token ids with trailing padding (id 0) on the second row, so the mask is not all ones."""
    ids = torch.randint(1, VOCAB, (BATCH, SEQ), generator=torch.Generator().manual_seed(seed))
    ids[1, SEQ - 5 :] = 0
    return ids


class SelfAttention(nn.Module):
    """Multi-head self-attention written by hand, as BERT implementations do."""

    def __init__(self):
        super().__init__()
        self.query, self.key, self.value = (nn.Linear(HIDDEN, HIDDEN) for _ in range(3))
        self.out = nn.Linear(HIDDEN, HIDDEN)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        # x.size() rather than constants: this is what makes exporters emit Shape/Gather chains
        batch, seq, _ = x.size()
        return x.view(batch, seq, HEADS, HIDDEN // HEADS).permute(0, 2, 1, 3)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        q, k, v = self._heads(self.query(x)), self._heads(self.key(x)), self._heads(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(HIDDEN // HEADS) + mask
        context = torch.softmax(scores, dim=-1) @ v
        batch, _, seq, _ = context.size()
        return self.out(context.permute(0, 2, 1, 3).reshape(batch, seq, HIDDEN))


class EncoderLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.attention = SelfAttention()
        self.norm1, self.norm2 = nn.LayerNorm(HIDDEN), nn.LayerNorm(HIDDEN)
        self.ffn = nn.Sequential(
            nn.Linear(HIDDEN, 4 * HIDDEN), nn.GELU(), nn.Linear(4 * HIDDEN, HIDDEN)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.attention(x, mask))
        return self.norm2(x + self.ffn(x))


class TinyBert(nn.Module):
    """Token + position embeddings, a padding mask from `input_ids != 0`, and two encoder layers."""

    def __init__(self):
        super().__init__()
        self.tokens = nn.Embedding(VOCAB, HIDDEN)
        self.positions = nn.Embedding(SEQ, HIDDEN)
        self.norm = nn.LayerNorm(HIDDEN)
        self.layers = nn.ModuleList(EncoderLayer() for _ in range(LAYERS))
        self.pooler = nn.Linear(HIDDEN, HIDDEN)

    def forward(self, input_ids: torch.Tensor):
        batch, seq = input_ids.shape
        positions = torch.arange(seq, device=input_ids.device).unsqueeze(0).expand(batch, seq)
        x = self.norm(self.tokens(input_ids) + self.positions(positions))
        mask = self._extended_mask(input_ids)
        for layer in self.layers:
            x = layer(x, mask)
        return x, torch.tanh(self.pooler(x[:, 0]))

    @staticmethod
    def _extended_mask(input_ids: torch.Tensor) -> torch.Tensor:
        # [B, S] -> [B, 1, S, S] additive mask, the way HF BERT builds it for the exporters
        batch, seq = input_ids.shape
        keep = (input_ids != 0)[:, None, None, :].expand(batch, 1, seq, seq)
        zeros = torch.zeros(keep.shape, dtype=torch.float32)
        return torch.where(keep, zeros, torch.full_like(zeros, torch.finfo(torch.float32).min))


class MaskedBert(nn.Module):
    """MiniLM's inputs: token ids and an attention mask; positions from `arange(seq)` (an ONNX
    Range whose limit is the sequence dim) and HF's additive mask `(1 - mask) * min`."""

    MAX_POSITIONS = 64

    def __init__(self):
        super().__init__()
        self.tokens = nn.Embedding(VOCAB, HIDDEN)
        self.positions = nn.Embedding(self.MAX_POSITIONS, HIDDEN)
        self.norm = nn.LayerNorm(HIDDEN)
        self.layers = nn.ModuleList(EncoderLayer() for _ in range(LAYERS))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        x = self.norm(self.tokens(input_ids) + self.positions(positions))
        keep = attention_mask[:, None, None, :].to(torch.float32)
        mask = (1.0 - keep) * torch.finfo(torch.float32).min
        for layer in self.layers:
            x = layer(x, mask)
        return x


class TorchEncoder(nn.Module):
    """`nn.TransformerEncoder` (batch_first) with a key padding mask from the token ids."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, HIDDEN)
        layer = nn.TransformerEncoderLayer(
            HIDDEN, HEADS, dim_feedforward=4 * HIDDEN, dropout=0.0, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.embed(input_ids), src_key_padding_mask=input_ids == 0)


class TinyCnn(nn.Module):
    """conv-bn-relu stem, max pool, one residual block, global average pool, linear head."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.pool = nn.MaxPool2d(2)
        self.block = nn.Sequential(
            nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16),
        )  # fmt: skip
        self.head = nn.Linear(16, classes)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.stem(image))
        x = torch.relu(x + self.block(x))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def _seeded(cls) -> nn.Module:
    torch.manual_seed(0)
    module = cls().eval()
    for buffer_name, buffer in module.named_buffers():
        if buffer_name.endswith("running_var"):  # non-trivial BatchNorm statistics
            buffer.uniform_(0.5, 1.5)
        elif buffer_name.endswith("running_mean"):
            buffer.uniform_(-0.2, 0.2)
    return module


def tiny_bert():
    return _seeded(TinyBert), (_input_ids(),)


def masked_bert():
    ids = _input_ids()
    return _seeded(MaskedBert), (ids, (ids != 0).to(torch.int64))


def torch_encoder():
    return _seeded(TorchEncoder), (_input_ids(),)


def tiny_cnn():
    image = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    return _seeded(TinyCnn), (image,)


MODELS = {"bert": tiny_bert, "transformer_encoder": torch_encoder, "cnn": tiny_cnn}


def export(module: nn.Module, args: tuple, dynamo: bool, opset: int = 18, **options):
    """`torch.onnx.export` to a ModelProto with any exporter options, inputs named as in forward().

    Unlike `tvmopt.frontend.torch_export.to_onnx`, this passes options through (dynamic axes,
    local functions, initializers as inputs): the shapes of exporter output users bring along.
    """
    names = input_names(module, len(args))
    with torch.no_grad(), without_mha_fastpath(torch), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            program = torch.onnx.export(
                module, args, input_names=names, dynamo=True, opset_version=opset, **options
            )
            return program.model_proto
        buffer = io.BytesIO()
        torch.onnx.export(
            module, args, buffer, input_names=names, dynamo=False, opset_version=opset, **options
        )
        return onnx.load_model_from_string(buffer.getvalue())


def export_dynamic(module: nn.Module, args: tuple, dynamo: bool):
    """Export a token model with dynamic batch and sequence dims, as models are exported to serve.

    This is the exporter output with the most shape arithmetic: every `x.size()` becomes a
    Shape/Gather chain instead of a constant.
    """
    names = input_names(module, len(args))
    if dynamo:
        batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq", max=SEQ)
        shapes = {name: {0: batch, 1: seq} for name in names}
        return export(module, args, dynamo=True, dynamic_shapes=shapes)
    axes = {name: {0: "batch", 1: "seq"} for name in names}
    return export(module, args, dynamo=False, dynamic_axes=axes)
