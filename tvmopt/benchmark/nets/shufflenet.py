"""ShuffleNetV2 (Ma et al. 2018): units that split the channels in two, transform one half
(1x1, depthwise 3x3, 1x1) and shuffle the halves back together; stride-2 units transform both.
x1.0 is stage repeats (4, 8, 4) and channels (24, 116, 232, 464, 1024)."""

import torch
from torch import nn


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, relu=True):
    conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False)
    return [conv, nn.BatchNorm2d(cout)] + ([nn.ReLU()] if relu else [])


def channel_shuffle(x, groups: int = 2):
    """Interleave the groups' channels: a reshape, a transpose and a reshape back."""
    batch, channels, height, width = x.shape
    x = x.reshape(batch, groups, channels // groups, height, width).transpose(1, 2)
    return x.reshape(batch, channels, height, width)


def transform(cin: int, cout: int, stride: int) -> nn.Sequential:
    """1x1, depthwise 3x3 (no ReLU after it), 1x1."""
    layers = conv_bn(cin, cout, 1) + conv_bn(cout, cout, 3, stride, groups=cout, relu=False)
    return nn.Sequential(*layers, *conv_bn(cout, cout, 1))


class ShuffleUnit(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        half = cout // 2
        self.downsample = stride == 2
        if self.downsample:  # both halves see the whole input and shrink it
            shortcut = conv_bn(cin, cin, 3, stride, groups=cin, relu=False) + conv_bn(cin, half, 1)
            self.shortcut = nn.Sequential(*shortcut)
        self.branch = transform(cin if self.downsample else half, half, stride)

    def forward(self, x):
        if self.downsample:
            out = torch.cat([self.shortcut(x), self.branch(x)], dim=1)
        else:
            kept, changed = x.chunk(2, dim=1)
            out = torch.cat([kept, self.branch(changed)], dim=1)
        return channel_shuffle(out)


class ShuffleNetV2(nn.Module):
    def __init__(self, repeats=(4, 8, 4), channels=(24, 116, 232, 464, 1024), num_classes=1000):
        super().__init__()
        layers, cin = conv_bn(3, channels[0], 3, 2) + [nn.MaxPool2d(3, 2, 1)], channels[0]
        for count, cout in zip(repeats, channels[1:-1], strict=True):
            layers += [ShuffleUnit(cin if i == 0 else cout, cout, 2 if i == 0 else 1)
                       for i in range(count)]  # fmt: skip
            cin = cout
        layers += conv_bn(cin, channels[-1], 1) + [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels[-1], num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))
