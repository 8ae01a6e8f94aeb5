"""The bench model suite, written in plain PyTorch with seeded weights (no downloads, and no
torchvision, which has no CPU wheel here), exported to ONNX once and cached.

Each entry builds (module, example_inputs); `export` caches the ONNX file by name and opset.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SuiteModel:
    name: str
    build: object  # () -> (torch.nn.Module, tuple of example tensors)
    description: str


def _torch():
    import torch

    return torch


def _seeded(build):
    def seeded_build():
        torch = _torch()
        torch.manual_seed(0)
        module, inputs = build(torch)
        _randomize_norm_stats(torch, module)
        return module.eval(), inputs

    return seeded_build


def _randomize_norm_stats(torch, module) -> None:
    """Fresh BatchNorm stats are 0/1, which would make every BN an identity."""
    for layer in module.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.running_mean.uniform_(-0.1, 0.1)
            layer.running_var.uniform_(0.5, 1.5)


def export(model: SuiteModel, cache_dir: Path) -> Path:
    """The model's ONNX file under `cache_dir`, exported on first use."""
    path = Path(cache_dir) / f"{model.name}.onnx"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        module, inputs = model.build()
        path.write_bytes(to_onnx_bytes(module, inputs))
    return path


def to_onnx_bytes(module, inputs) -> bytes:
    torch = _torch()
    buffer = io.BytesIO()
    names = [f"input_{i}" for i in range(len(inputs))] if len(inputs) > 1 else ["input"]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, inputs, buffer, input_names=names, opset_version=17, dynamo=False)
    return buffer.getvalue()


def _resnet18(torch):
    from .nets.resnet import resnet18

    return resnet18(), (torch.randn(1, 3, 224, 224),)


def _resnet50(torch):
    from .nets.resnet import resnet50

    return resnet50(), (torch.randn(1, 3, 224, 224),)


def _mobilenet_v2(torch):
    from .nets.mobilenet import MobileNetV2

    return MobileNetV2(), (torch.randn(1, 3, 224, 224),)


def _bert_base(torch, seq: int = 128, padding: int = 16):
    from .nets.bert import BertEncoder

    ids = torch.randint(1, 30522, (1, seq))
    ids[:, seq - padding :] = 0  # a padded tail exercises the attention mask
    return BertEncoder(), (ids,)


def _mlp(torch, widths=(784, 1024, 1024, 10)):
    layers = []
    for cin, cout in zip(widths, widths[1:], strict=False):
        layers += [torch.nn.Linear(cin, cout), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1]), (torch.randn(1, widths[0]),)


def _relu(torch):
    return torch.nn.ReLU(), (torch.randn(1, 16),)


def _tiny_mlp(torch):
    return _mlp(torch, widths=(16, 32, 4))


SUITE = {
    model.name: model
    for model in [
        SuiteModel("resnet18", _seeded(_resnet18), "ResNet-18, 1x3x224x224"),
        SuiteModel("resnet50", _seeded(_resnet50), "ResNet-50, 1x3x224x224"),
        SuiteModel("mobilenet_v2", _seeded(_mobilenet_v2), "MobileNetV2, 1x3x224x224"),
        SuiteModel("bert_base", _seeded(_bert_base), "BERT-base-like encoder, 1x128 tokens"),
        SuiteModel("mlp", _seeded(_mlp), "MLP 784-1024-1024-10, batch 1"),
        SuiteModel("relu", _seeded(_relu), "one ReLU on 16 floats: the per-call overhead"),
        SuiteModel("tiny_mlp", _seeded(_tiny_mlp), "MLP 16-32-4, for tests"),
    ]
}
DEFAULT_SUITE = ["resnet18", "resnet50", "mobilenet_v2", "bert_base", "mlp"]
