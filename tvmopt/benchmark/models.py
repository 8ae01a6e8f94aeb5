"""The bench model suite, written in plain PyTorch with seeded weights (no downloads, and no
torchvision, which has no CPU wheel here), exported to ONNX once and cached.

Each entry builds (module, example_inputs); `export` caches the ONNX file by name and opset.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from .sparse_suite import sparse_models


@dataclass(frozen=True)
class SuiteModel:
    name: str
    build: object  # () -> (torch.nn.Module, tuple of example tensors)
    description: str
    transform: object = None  # onnx.ModelProto -> onnx.ModelProto after export (pruning)


def _torch():
    import torch

    return torch


def _seeded(build, extended: bool = False):
    """`extended`: the extended suite's weights (He init, random LayerNorms); the default suite
    keeps PyTorch's fresh ones, so its ONNX files and results stay as they were."""

    def seeded_build():
        torch = _torch()
        torch.manual_seed(0)
        module, inputs = build(torch)
        _randomize_norm_stats(torch, module)
        if extended:
            _keep_signal(torch, module)
            _randomize_layer_norms(torch, module)
        return module.eval(), inputs

    return seeded_build


def _randomize_norm_stats(torch, module) -> None:
    """Fresh BatchNorm stats are 0/1, which would make every BN an identity."""
    for layer in module.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.running_mean.uniform_(-0.1, 0.1)
            layer.running_var.uniform_(0.5, 1.5)


def _keep_signal(torch, module) -> None:
    """He init: PyTorch's default init shrinks activations layer by layer, so that a deep
    network's output hardly depends on its input (EfficientNet-B0's by 1e-7), and a wrong
    early layer would go unseen by the output check."""
    for layer in module.modules():
        if isinstance(layer, torch.nn.Conv2d | torch.nn.Linear):
            torch.nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")


def _randomize_layer_norms(torch, module) -> None:
    """Fresh LayerNorm weights are 1/0, which would leave only the normalization to check."""
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, torch.nn.LayerNorm) and layer.weight is not None:
                layer.weight.uniform_(0.5, 1.5)
                layer.bias.uniform_(-0.1, 0.1)


def export(model: SuiteModel, cache_dir: Path) -> Path:
    """The model's ONNX file under `cache_dir`, exported on first use."""
    path = Path(cache_dir) / f"{model.name}.onnx"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        module, inputs = model.build()
        exported = to_onnx_bytes(module, inputs)
        if model.transform is not None:
            import onnx

            exported = model.transform(onnx.load_from_string(exported)).SerializeToString()
        path.write_bytes(exported)
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


def _image(torch, size: int = 224):
    return (torch.randn(1, 3, size, size),)


def _shufflenet_v2(torch):
    from .nets.shufflenet import ShuffleNetV2

    return ShuffleNetV2(), _image(torch)


def _densenet121(torch):
    from .nets.densenet import DenseNet

    return DenseNet(), _image(torch)


def _efficientnet_b0(torch):
    from .nets.efficientnet import EfficientNet

    return EfficientNet(), _image(torch)


def _convnext_tiny(torch):
    from .nets.convnext import ConvNeXt

    return ConvNeXt(layer_scale=0.1), _image(torch)  # 1e-6, as trained from, hides the blocks


def _vit_b16(torch):
    from .nets.vit import VisionTransformer

    return VisionTransformer(), _image(torch)


def _inception_v3(torch):
    from .nets.inception import InceptionV3

    return InceptionV3(), _image(torch, 299)


def _detector(torch):
    from .nets.detection import Detector

    return Detector(), _image(torch, 320)


EXTENDED_MODELS = [
    SuiteModel(name, _seeded(build, extended=True), description)
    for name, build, description in [
        ("shufflenet_v2", _shufflenet_v2, "ShuffleNetV2 x1.0, 1x3x224x224"),
        ("densenet121", _densenet121, "DenseNet-121, 1x3x224x224"),
        ("efficientnet_b0", _efficientnet_b0, "EfficientNet-B0, 1x3x224x224"),
        ("convnext_tiny", _convnext_tiny, "ConvNeXt-T, 1x3x224x224"),
        ("vit_b16", _vit_b16, "ViT-B/16, 1x3x224x224"),
        ("inception_v3", _inception_v3, "Inception-v3, 1x3x299x299"),
        ("detector", _detector, "YOLO/FPN-style detector (nets/detection.py), 1x3x320x320"),
    ]
]
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
        *EXTENDED_MODELS,
    ]
}
SPARSE_MODELS = sparse_models(SUITE, SuiteModel)
SUITE.update({model.name: model for model in SPARSE_MODELS})
DEFAULT_SUITE = ["resnet18", "resnet50", "mobilenet_v2", "bert_base", "mlp"]
EXTENDED_SUITE = [model.name for model in EXTENDED_MODELS]
# the dense models first: each pruned one's speed-up is read against them
SPARSE_SUITE = ["bert_base", "resnet50", *(model.name for model in SPARSE_MODELS)]
# the llm suite's encoders are its own (llm_suite.ENCODERS): dynamic axes, benched per sequence
# length; llm_suite imports the harness, which imports this module, so the names are here
LLM_SUITE = ["minilm", "bert_base"]
SUITES = {"default": DEFAULT_SUITE, "extended": EXTENDED_SUITE, "sparse": SPARSE_SUITE,
          "llm": LLM_SUITE}  # fmt: skip
