"""The extended bench suite's networks, each built small (few channels and blocks, a small
image), exported to ONNX, compiled and checked against ONNX Runtime; and `bench --suite`."""

import onnx
import pytest

torch = pytest.importorskip("torch")  # the suite's networks are PyTorch modules

import tvmopt  # noqa: E402
from tvmopt.benchmark.models import EXTENDED_SUITE, SUITE, SUITES, _seeded, to_onnx_bytes  # noqa: E402
from tvmopt.benchmark.nets.convnext import ConvNeXt  # noqa: E402
from tvmopt.benchmark.nets.densenet import DenseNet  # noqa: E402
from tvmopt.benchmark.nets.detection import Detector  # noqa: E402
from tvmopt.benchmark.nets.efficientnet import EfficientNet  # noqa: E402
from tvmopt.benchmark.nets.inception import InceptionV3  # noqa: E402
from tvmopt.benchmark.nets.shufflenet import ShuffleNetV2  # noqa: E402
from tvmopt.benchmark.nets.vit import VisionTransformer  # noqa: E402
from tvmopt.cli import build_parser  # noqa: E402
from tvmopt.cli.bench_cmd import chosen_models  # noqa: E402

from .helpers import assert_matches_ort  # noqa: E402

# name -> (the network built small, its image size)
SMALL = {
    "shufflenet_v2": (lambda: ShuffleNetV2((1, 2, 1), (8, 16, 32, 64, 64), num_classes=10), 32),
    "densenet121": (lambda: DenseNet(8, (2, 2, 2, 2), stem=16, bottleneck=2, num_classes=10), 32),
    "efficientnet_b0": (lambda: EfficientNet(width=0.25, depth=0.25, num_classes=10), 32),
    "convnext_tiny": (lambda: ConvNeXt((1, 1, 2, 1), (8, 16, 16, 32), 0.5, num_classes=10), 32),
    "vit_b16": (lambda: VisionTransformer(32, 8, dim=32, depth=2, heads=4, mlp=64), 32),
    "inception_v3": (lambda: InceptionV3(width=1 / 16, blocks=(1, 1, 1), num_classes=10), 75),
    "detector": (lambda: Detector(width=4, depth=1, anchors=2, classes=3), 64),
}


def small_model(name: str):
    """The small network, seeded as the suite seeds its models, as ONNX, and its input."""
    net, size = SMALL[name]
    module, (image,) = _seeded(
        lambda torch: (net(), (torch.randn(1, 3, size, size),)), extended=True
    )()
    return onnx.load_from_string(to_onnx_bytes(module, (image,))), image.numpy()


@pytest.mark.parametrize("name", EXTENDED_SUITE)
def test_small_network_matches_onnxruntime(name):
    proto, image = small_model(name)
    assert_matches_ort(proto, tvmopt.compile(proto), {"input": image})


@pytest.mark.parametrize("name", ["efficientnet_b0", "detector", "densenet121"])
def test_small_cnns_run_channels_last(name):
    """SiLU and squeeze-excite gates (EfficientNet), resizes, concats and reshaping heads (the
    detector), concats of one tensor and pre-activation batch norms (DenseNet) all let the
    layout permutes cancel (passes/sink_permutes.py): every conv runs NHWC, none NCHW."""
    proto, image = small_model(name)
    compiled = tvmopt.compile(proto)
    assert_matches_ort(proto, compiled, {"input": image})
    rules = [kernel["rule"] for kernel in compiled.metadata.extra["kernels"].values()]
    assert not [rule for rule in rules if rule.endswith("NCHW")], rules
    assert sum(rule in ("Conv2dNHWC", "Conv2dWinograd") for rule in rules) >= 5


@pytest.mark.slow
@pytest.mark.parametrize("name", EXTENDED_SUITE)
def test_full_size_network_matches_onnxruntime(name):
    module, inputs = SUITE[name].build()
    proto = onnx.load_from_string(to_onnx_bytes(module, inputs))
    assert_matches_ort(proto, tvmopt.compile(proto), {"input": inputs[0].numpy()})


def bench_args(*argv):
    return build_parser().parse_args(["bench", *argv])


def test_suite_picks_the_models_unless_some_are_named():
    assert chosen_models(bench_args()) == SUITES["default"]
    assert chosen_models(bench_args("--suite", "extended")) == EXTENDED_SUITE
    assert chosen_models(bench_args("--suite", "extended", "resnet18")) == ["resnet18"]
    assert set(EXTENDED_SUITE) <= set(SUITE) and not set(EXTENDED_SUITE) & set(SUITES["default"])


def test_unknown_suite_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench_args("--suite", "huge")
    assert exit_info.value.code == 2
    assert "invalid choice: 'huge'" in capsys.readouterr().err
