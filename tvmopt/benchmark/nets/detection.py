"""A small one-stage detector in the YOLO/FPN style, our own design for the bench.

- Backbone: a 3x3 stride-2 stem and four stages, each a 3x3 stride-2 conv then `depth`
  residual bottlenecks (1x1 then 3x3, added to their input); conv, BatchNorm, SiLU throughout.
  It yields C3, C4 and C5 at strides 8, 16 and 32 with 4x, 8x and 16x `width` channels.
- Neck: top-down, as in an FPN, where each upsampled coarser map is concatenated with a 1x1
  lateral of the finer one and fused by a 3x3 conv; P5 -> P4 by nearest 2x, P4 -> P3 by
  bilinear 2x (both ONNX Resize modes); then bottom-up, as in PANet: P3 downsampled by a 3x3
  stride-2 conv and concatenated with P4 again.
- Head: per level a 3x3 conv and a 1x1 prediction conv of `anchors` x (4 box + 1 objectness +
  `classes`) channels, sigmoid, reshaped to (batch, boxes, 5 + classes); the levels' boxes
  concatenated. At 320x320 that is 3 x (40^2 + 20^2 + 10^2) = 6300 boxes.
"""

import torch
from torch import nn


def conv(cin: int, cout: int, kernel: int = 1, stride: int = 1) -> nn.Sequential:
    layer = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False)
    return nn.Sequential(layer, nn.BatchNorm2d(cout), nn.SiLU())


class Bottleneck(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(conv(channels, channels // 2), conv(channels // 2, channels, 3))

    def forward(self, x):
        return x + self.body(x)


def stage(cin: int, cout: int, depth: int) -> nn.Sequential:
    return nn.Sequential(conv(cin, cout, 3, 2), *(Bottleneck(cout) for _ in range(depth)))


class Backbone(nn.Module):
    def __init__(self, width: int, depth: int):
        super().__init__()
        widths = [width * 2**i for i in range(5)]  # strides 2 .. 32
        self.early = nn.Sequential(conv(3, width, 3, 2), stage(widths[0], widths[1], depth))
        self.stages = nn.ModuleList(stage(widths[i], widths[i + 1], depth) for i in (1, 2, 3))

    def forward(self, x):
        features, x = [], self.early(x)
        for layer in self.stages:
            x = layer(x)
            features.append(x)
        return features  # C3, C4, C5


class Neck(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        c3, c4, c5 = 4 * width, 8 * width, 16 * width
        self.reduce5, self.lateral4, self.lateral3 = conv(c5, c4), conv(c4, c4), conv(c3, c3)
        self.fuse4, self.reduce4 = conv(2 * c4, c4, 3), conv(c4, c3)
        self.fuse3 = conv(2 * c3, c3, 3)
        self.down3, self.fuse_out4 = conv(c3, c3, 3, 2), conv(c3 + c4, c4, 3)
        self.nearest = nn.Upsample(scale_factor=2, mode="nearest")
        self.bilinear = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)

    def forward(self, c3, c4, c5):
        p5 = self.reduce5(c5)
        p4 = self.fuse4(torch.cat([self.nearest(p5), self.lateral4(c4)], dim=1))
        p3 = self.fuse3(torch.cat([self.bilinear(self.reduce4(p4)), self.lateral3(c3)], dim=1))
        n4 = self.fuse_out4(torch.cat([self.down3(p3), p4], dim=1))
        return [p3, n4, p5]


class Head(nn.Module):
    def __init__(self, cin: int, anchors: int, classes: int):
        super().__init__()
        self.outputs = 5 + classes
        self.predict = nn.Sequential(conv(cin, cin, 3), nn.Conv2d(cin, anchors * self.outputs, 1))

    def forward(self, x):
        y = torch.sigmoid(self.predict(x))
        batch, _, height, width = y.shape
        y = y.reshape(batch, -1, self.outputs, height * width).permute(0, 1, 3, 2)
        return y.reshape(batch, -1, self.outputs)


class Detector(nn.Module):
    def __init__(self, width: int = 32, depth: int = 1, anchors: int = 3, classes: int = 80):
        super().__init__()
        self.backbone, self.neck = Backbone(width, depth), Neck(width)
        levels = (4 * width, 8 * width, 8 * width)  # P3, N4, P5 channels
        self.heads = nn.ModuleList(Head(c, anchors, classes) for c in levels)

    def forward(self, x):
        levels = self.neck(*self.backbone(x))
        return torch.cat([head(level) for head, level in zip(self.heads, levels, strict=True)], 1)
