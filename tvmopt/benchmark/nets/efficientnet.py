"""EfficientNet (Tan and Le 2019): MBConv blocks (1x1 expansion, depthwise 3x3 or 5x5,
squeeze-and-excitation, 1x1 projection) with SiLU. B0 is width and depth 1.0; `width` scales
the channels (rounded to multiples of 8) and `depth` the repeats, as the compound scaling does."""

import math

from torch import nn

# (expansion, kernel, first stride, channels, repeats), B0's stages.
CONFIG = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
          (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]  # fmt: skip


def round_channels(channels: float, divisor: int = 8) -> int:
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * channels else rounded


def conv_bn_silu(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act=True):
    conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False)
    return [conv, nn.BatchNorm2d(cout)] + ([nn.SiLU()] if act else [])


class SqueezeExcite(nn.Module):
    """Scale each channel by a gate computed from the channels' means."""

    def __init__(self, channels: int, squeezed: int):
        super().__init__()
        squeeze, excite = nn.Conv2d(channels, squeezed, 1), nn.Conv2d(squeezed, channels, 1)
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), squeeze, nn.SiLU(), excite, nn.Sigmoid())

    def forward(self, x):
        return x * self.gate(x)


class MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expansion: int):
        super().__init__()
        hidden = cin * expansion
        layers = conv_bn_silu(cin, hidden, 1) if expansion != 1 else []
        layers += conv_bn_silu(hidden, hidden, kernel, stride, groups=hidden)
        layers += [SqueezeExcite(hidden, max(1, cin // 4))]
        layers += conv_bn_silu(hidden, cout, 1, act=False)
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout  # stochastic depth is off in inference

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


class EfficientNet(nn.Module):
    def __init__(self, width: float = 1.0, depth: float = 1.0, num_classes: int = 1000):
        super().__init__()
        cin = round_channels(32 * width)
        layers = conv_bn_silu(3, cin, 3, 2)
        for expansion, kernel, stride, channels, repeats in CONFIG:
            cout = round_channels(channels * width)
            for index in range(math.ceil(repeats * depth)):
                layers.append(MBConv(cin, cout, kernel, stride if index == 0 else 1, expansion))
                cin = cout
        head = round_channels(1280 * width)
        layers += conv_bn_silu(cin, head, 1) + [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(head, num_classes)  # dropout before it is off in inference

    def forward(self, x):
        return self.classifier(self.features(x))
