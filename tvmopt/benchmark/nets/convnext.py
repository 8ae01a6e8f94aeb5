"""ConvNeXt (Liu et al. 2022): blocks of a 7x7 depthwise conv, LayerNorm over the channels,
a 4x pointwise MLP with GELU and a learned per-channel layer scale, around a residual.
ConvNeXt-T is depths (3, 3, 9, 3), widths (96, 192, 384, 768)."""

import torch
from torch import nn


class ChannelNorm(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW map: channels last, normalize, channels first."""

    def forward(self, x):
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class Block(nn.Module):
    def __init__(self, dim: int, layer_scale: float):
        super().__init__()
        self.depthwise = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.layer_scale = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x):
        y = self.norm(self.depthwise(x).permute(0, 2, 3, 1))  # the MLP runs channels last
        return x + (self.layer_scale * self.mlp(y)).permute(0, 3, 1, 2)


class ConvNeXt(nn.Module):
    """`layer_scale` is the layer scale's initial value: 1e-6 in training; the bench builds it
    larger so that the blocks' branches count in the output."""

    def __init__(self, depths=(3, 3, 9, 3), dims=(96, 192, 384, 768), layer_scale=1e-6,
                 num_classes=1000):  # fmt: skip
        super().__init__()
        layers = [nn.Conv2d(3, dims[0], 4, 4), ChannelNorm(dims[0], eps=1e-6)]  # 4x4 patches
        for stage, (depth, dim) in enumerate(zip(depths, dims, strict=True)):
            if stage > 0:
                layers += [
                    ChannelNorm(dims[stage - 1], eps=1e-6),
                    nn.Conv2d(dims[stage - 1], dim, 2, 2),
                ]
            layers += [Block(dim, layer_scale) for _ in range(depth)]
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.LayerNorm(dims[-1], eps=1e-6)]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(dims[-1], num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))
