"""DenseNet (Huang et al. 2017): each layer of a block reads the concatenation of every feature
map before it (BN, ReLU, 1x1 to 4x growth, BN, ReLU, 3x3 to growth); transitions halve the
channels and the size. DenseNet-121 is growth 32, blocks (6, 12, 24, 16), 64 stem channels."""

import torch
from torch import nn


def bn_relu_conv(cin: int, cout: int, kernel: int) -> list[nn.Module]:
    conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False)
    return [nn.BatchNorm2d(cin), nn.ReLU(), conv]


class DenseBlock(nn.Module):
    def __init__(self, cin: int, layers: int, growth: int, bottleneck: int):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(*bn_relu_conv(cin + i * growth, bottleneck * growth, 1),
                          *bn_relu_conv(bottleneck * growth, growth, 3))
            for i in range(layers)
        )  # fmt: skip
        self.out_channels = cin + layers * growth

    def forward(self, x):
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1)))
        return torch.cat(features, dim=1)


class DenseNet(nn.Module):
    def __init__(self, growth=32, blocks=(6, 12, 24, 16), stem=64, bottleneck=4, num_classes=1000):
        super().__init__()
        conv = nn.Conv2d(3, stem, 7, 2, 3, bias=False)
        layers = [conv, nn.BatchNorm2d(stem), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
        cin = stem
        for index, count in enumerate(blocks):
            layers.append(DenseBlock(cin, count, growth, bottleneck))
            cin = layers[-1].out_channels
            if index < len(blocks) - 1:  # a transition: half the channels, half the size
                layers += [*bn_relu_conv(cin, cin // 2, 1), nn.AvgPool2d(2, 2)]
                cin //= 2
        layers += [nn.BatchNorm2d(cin), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))
