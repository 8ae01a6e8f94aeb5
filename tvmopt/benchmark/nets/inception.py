"""Inception-v3 (Szegedy et al. 2016) at 299x299: a conv stem, then blocks of parallel branches
concatenated on the channels: 1x1, 5x5, double 3x3 and average-pool branches (A), grid
reductions (B, D), 7x7 factored into 1x7 and 7x1 (C), 3x3 split into 1x3 and 3x1 (E).
`width` scales every channel count and `blocks` the number of A, C and E blocks (3, 4, 2);
the auxiliary classifier is for training only and left out."""

from functools import partial

import torch
from torch import nn


class ConvBn(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel, stride=1, padding=0):
        conv = nn.Conv2d(cin, cout, kernel, stride, padding, bias=False)
        super().__init__(conv, nn.BatchNorm2d(cout, eps=0.001), nn.ReLU())


def pooled(cin: int, cout: int) -> nn.Sequential:
    """The pool branch: a 3x3 average (padding counted, as torchvision's) and a 1x1."""
    return nn.Sequential(nn.AvgPool2d(3, 1, 1), ConvBn(cin, cout, 1))


class Branches(nn.Module):
    """Every branch on the same input, concatenated; a branch that is a list forks at its end."""

    def __init__(self, *branches):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x):
        return torch.cat([branch(x) for branch in self.branches], dim=1)


class Fork(nn.Module):
    def __init__(self, trunk: nn.Module, *tips):
        super().__init__()
        self.trunk, self.tips = trunk, Branches(*tips)

    def forward(self, x):
        return self.tips(self.trunk(x))


def block_a(cin: int, pool: int, c) -> tuple[Branches, int]:
    double = nn.Sequential(ConvBn(cin, c(64), 1), ConvBn(c(64), c(96), 3, padding=1),
                           ConvBn(c(96), c(96), 3, padding=1))  # fmt: skip
    five = nn.Sequential(ConvBn(cin, c(48), 1), ConvBn(c(48), c(64), 5, padding=2))
    return Branches(ConvBn(cin, c(64), 1), five, double, pooled(cin, pool)), c(64) * 2 + c(
        96
    ) + pool


def block_b(cin: int, c) -> tuple[Branches, int]:
    double = nn.Sequential(ConvBn(cin, c(64), 1), ConvBn(c(64), c(96), 3, padding=1),
                           ConvBn(c(96), c(96), 3, stride=2))  # fmt: skip
    return Branches(ConvBn(cin, c(384), 3, 2), double, nn.MaxPool2d(3, 2)), c(384) + c(96) + cin


def seven(cin: int, mid: int, cout: int, order: str) -> list[ConvBn]:
    """1x7 (a row, "r") and 7x1 (a column, "c") convs in `order`, each keeping the size."""
    kernels = {"r": ((1, 7), (0, 3)), "c": ((7, 1), (3, 0))}
    sizes = [cin] + [mid] * (len(order) - 1) + [cout]
    return [ConvBn(sizes[i], sizes[i + 1], kernels[axis][0], padding=kernels[axis][1])
            for i, axis in enumerate(order)]  # fmt: skip


def block_c(cin: int, mid: int, c) -> tuple[Branches, int]:
    single = nn.Sequential(ConvBn(cin, mid, 1), *seven(mid, mid, c(192), "rc"))
    double = nn.Sequential(ConvBn(cin, mid, 1), *seven(mid, mid, c(192), "crcr"))
    return Branches(ConvBn(cin, c(192), 1), single, double, pooled(cin, c(192))), 4 * c(192)


def block_d(cin: int, c) -> tuple[Branches, int]:
    three = nn.Sequential(ConvBn(cin, c(192), 1), ConvBn(c(192), c(320), 3, 2))
    seven_three = nn.Sequential(ConvBn(cin, c(192), 1), *seven(c(192), c(192), c(192), "rc"),
                                ConvBn(c(192), c(192), 3, 2))  # fmt: skip
    return Branches(three, seven_three, nn.MaxPool2d(3, 2)), c(320) + c(192) + cin


def split_three(cin: int, cout: int) -> list[ConvBn]:
    """A 1x3 and a 3x1 on the same input."""
    return [ConvBn(cin, cout, (1, 3), padding=(0, 1)), ConvBn(cin, cout, (3, 1), padding=(1, 0))]


def block_e(cin: int, c) -> tuple[Branches, int]:
    three = Fork(ConvBn(cin, c(384), 1), *split_three(c(384), c(384)))
    trunk = nn.Sequential(ConvBn(cin, c(448), 1), ConvBn(c(448), c(384), 3, padding=1))
    double = Fork(trunk, *split_three(c(384), c(384)))
    branches = Branches(ConvBn(cin, c(320), 1), three, double, pooled(cin, c(192)))
    return branches, c(320) + 4 * c(384) + c(192)


def stem(c) -> tuple[list[nn.Module], int]:
    layers = [ConvBn(3, c(32), 3, 2), ConvBn(c(32), c(32), 3), ConvBn(c(32), c(64), 3, padding=1),
              nn.MaxPool2d(3, 2), ConvBn(c(64), c(80), 1), ConvBn(c(80), c(192), 3),
              nn.MaxPool2d(3, 2)]  # fmt: skip
    return layers, c(192)


def block_makers(c, blocks) -> list:
    """cin -> (block, cout) for each block in order: A's pool branch is 32 wide in the first, C's
    7x7 branches 128, 160, 160 and 192."""
    pools = [c(32 if i == 0 else 64) for i in range(blocks[0])]
    mids = [c((128, 160, 160, 192)[min(i, 3)]) for i in range(blocks[1])]
    return ([partial(block_a, pool=pool, c=c) for pool in pools] + [partial(block_b, c=c)]
            + [partial(block_c, mid=mid, c=c) for mid in mids] + [partial(block_d, c=c)]
            + [partial(block_e, c=c)] * blocks[2])  # fmt: skip


class InceptionV3(nn.Module):
    """Needs an image of at least 75x75."""

    def __init__(self, width: float = 1.0, blocks=(3, 4, 2), num_classes: int = 1000):
        super().__init__()

        def c(channels: int) -> int:
            return max(4, round(channels * width))

        layers, cin = stem(c)
        for make in block_makers(c, blocks):
            block, cin = make(cin)
            layers.append(block)
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]  # dropout before fc is off in inference
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.fc(self.features(x))
