"""A squeeze-excite gate (x * sigmoid(conv(mean(x)))) channels last: the gate's conv keeps its
conv rule, with its sigmoid, and the multiply over the map is a kernel of its own
(passes/keep_gates_apart.py); before, all three fused into one function only the fallback took."""

import numpy as np
import onnx
import torch

import tvmopt
from tvmopt.benchmark.models import to_onnx_bytes

from .helpers import assert_matches_ort


class SqueezeExcite(torch.nn.Module):
    def __init__(self, channels=32, reduced=8):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, channels, 3, padding=1)
        self.reduce = torch.nn.Conv2d(channels, reduced, 1)
        self.expand = torch.nn.Conv2d(reduced, channels, 1)
        self.project = torch.nn.Conv2d(channels, 16, 1)

    def forward(self, x):
        x = torch.nn.functional.silu(self.stem(x))
        gate = torch.nn.functional.silu(self.reduce(x.mean((2, 3), keepdim=True)))
        return self.project(x * torch.sigmoid(self.expand(gate)))


def test_a_gate_conv_keeps_its_rule_and_the_multiply_runs_apart():
    torch.manual_seed(0)
    x = torch.randn(1, 3, 20, 20)
    model = onnx.load_from_string(to_onnx_bytes(SqueezeExcite().eval(), (x,)))
    compiled = tvmopt.compile(model)
    kernels = compiled.metadata.extra["kernels"]
    fallback = [name for name, record in kernels.items() if record["rule"] == "Fallback"]
    assert not any("conv" in name for name in fallback)
    assert any("multiply" in name for name in fallback)
    assert_matches_ort(model, compiled, {"input": x.numpy().astype(np.float32)})
