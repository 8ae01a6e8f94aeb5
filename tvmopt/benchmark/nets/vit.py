"""Vision Transformer (Dosovitskiy et al. 2021): 16x16 patches embedded by a strided conv, a class
token and learned positions, pre-LayerNorm encoder layers (multi-head self-attention, GELU MLP),
the class token's final state classified. ViT-B/16 is width 768, 12 layers, 12 heads, MLP 3072."""

import math

import torch
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x):
        batch, tokens, dim = x.shape
        qkv = (
            self.qkv(x).reshape(batch, tokens, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        )
        scores = qkv[0] @ qkv[1].transpose(-1, -2) / math.sqrt(self.head_dim)
        context = torch.softmax(scores, dim=-1) @ qkv[2]
        return self.out(context.transpose(1, 2).reshape(batch, tokens, dim))


class EncoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int, mlp: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.attention = Attention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp), nn.GELU(), nn.Linear(mlp, dim))

    def forward(self, x):
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    def __init__(self, image=224, patch=16, dim=768, depth=12, heads=12, mlp=3072,
                 num_classes=1000):  # fmt: skip
        super().__init__()
        self.patches = nn.Conv2d(3, dim, patch, patch)
        self.class_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.positions = nn.Parameter(torch.randn(1, (image // patch) ** 2 + 1, dim) * 0.02)
        self.layers = nn.Sequential(*(EncoderLayer(dim, heads, mlp) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        tokens = self.patches(x).flatten(2).transpose(1, 2)  # (batch, patches, dim)
        tokens = torch.cat([self.class_token.expand(x.shape[0], -1, -1), tokens], dim=1)
        x = self.norm(self.layers(tokens + self.positions))
        return self.head(x[:, 0])
