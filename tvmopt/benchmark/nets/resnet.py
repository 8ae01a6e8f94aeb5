"""ResNet-18 and ResNet-50 (He et al. 2016), torchvision's layout without torchvision."""

from torch import nn


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    conv = nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, bias=False)
    return [conv, nn.BatchNorm2d(cout)]


class Block(nn.Module):
    """Basic (two 3x3) or bottleneck (1x1, 3x3, 1x1) residual block."""

    def __init__(self, cin: int, width: int, stride: int, bottleneck: bool):
        super().__init__()
        cout = width * 4 if bottleneck else width
        if bottleneck:
            layers = conv_bn(cin, width, 1) + [nn.ReLU()] + conv_bn(width, width, 3, stride)
            layers += [nn.ReLU()] + conv_bn(width, cout, 1)
        else:
            layers = conv_bn(cin, width, 3, stride) + [nn.ReLU()] + conv_bn(width, width, 3)
        self.body = nn.Sequential(*layers)
        needs_projection = stride != 1 or cin != cout
        self.shortcut = (
            nn.Sequential(*conv_bn(cin, cout, 1, stride)) if needs_projection else nn.Identity()
        )
        self.out_channels = cout

    def forward(self, x):
        return nn.functional.relu(self.body(x) + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, depths: list[int], bottleneck: bool, num_classes: int = 1000):
        super().__init__()
        stem = conv_bn(3, 64, 7, 2) + [nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
        blocks, cin = [], 64
        for stage, depth in enumerate(depths):
            for index in range(depth):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(Block(cin, 64 * 2**stage, stride, bottleneck))
                cin = blocks[-1].out_channels
        self.features = nn.Sequential(*stem, *blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.fc(self.features(x))


def resnet18() -> ResNet:
    return ResNet([2, 2, 2, 2], bottleneck=False)


def resnet50() -> ResNet:
    return ResNet([3, 4, 6, 3], bottleneck=True)
