"""The pipeline: every opt level computes the same thing; the flags that expose it work."""

import os
import re

import onnx
import pytest

import tvmopt
from tvmopt.backends import BACKENDS, resolve
from tvmopt.cli import main
from tvmopt.passes import OPT_LEVELS

from .helpers import assert_matches_ort
from .test_pass_simplify import _kernels

LIGHT_DIR = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


@pytest.mark.parametrize("opt_level", OPT_LEVELS)
def test_every_level_matches_onnxruntime(demo_model, opt_level):
    assert_matches_ort(demo_model, tvmopt.compile(demo_model, opt_level=opt_level))


def test_higher_levels_launch_fewer_kernels(demo_model):
    counts = [_kernels(demo_model, level) for level in OPT_LEVELS]
    assert counts == sorted(counts, reverse=True) and counts[-1] < counts[0]


@pytest.mark.parametrize("name", ["llvm", "cuda"])
def test_pipelines_are_flat_named_lists(name):
    backend = BACKENDS[name](resolve({"kind": name, **({"arch": "sm_90"} if name == "cuda" else {})
                                      }).target)  # fmt: skip
    names = {level: [n for n, _ in backend.graph_passes(level)] for level in OPT_LEVELS}
    for level in OPT_LEVELS:
        assert len(names[level]) == len(set(names[level])), f"-O{level} repeats a pass name"
        lowering = [name for name, _ in backend.lowering_passes(level)]
        assert any(name.startswith("schedule_") for name in lowering)
    assert names[2][: len(names[1])] == names[1] and set(names[2]) <= set(names[3])


@pytest.mark.parametrize("level", [-1, 4, "3"])
def test_bad_opt_level(demo_model, level):
    with pytest.raises(tvmopt.OptionError, match="opt_level must be one of"):
        tvmopt.compile(demo_model, opt_level=level)


def test_cli_opt_level_dump_ir_and_pass_times(capsys, tmp_path, demo_path):
    dump = tmp_path / "ir"
    status = main(["compile", demo_path, "-o", str(tmp_path / "m.so"), "-O2",
                   "--dump-ir", str(dump), "--print-pass-times"])  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0
    dumped = sorted(p.name for p in dump.iterdir())
    assert any("tvmopt.FoldScaleShift" in name for name in dumped)
    assert not any("RecognizeActivations" in name for name in dumped)  # an -O3 pass
    assert "tvmopt.FoldScaleShift" in out and "us" in out  # TVM's timing table


def test_cli_long_option_and_bad_level(capsys, tmp_path, demo_path):
    assert main(["compile", demo_path, "-o", str(tmp_path / "m.so"), "--opt-level", "0"]) == 0
    with pytest.raises(SystemExit) as exit_info:
        main(["compile", demo_path, "-O7"])
    assert exit_info.value.code == 2


def test_inspect_passes_prints_counts_per_pass(capsys, demo_path):
    assert main(["inspect", demo_path, "--passes"]) == 0
    out = capsys.readouterr().out
    assert "fold_scale_shift" in out and "fuse_epilogue" in out and "legalize" in out
    # on the demo model: the convs become channels-last kernels, then their matmul head fuses
    assert re.search(r"conv_channels_last +12 -> 11 +12 -> 11", out)
    assert re.search(r"fuse_epilogue +10 -> 9 +10 -> 9", out)


def test_folding_never_blows_up_the_library(tmp_path):
    """VGG-19's light model generates its 400 MB FC weight with ConstantOfShape. Winograd's
    weights are 4x the 3x3 ones they replace, and VGG-19's weights are nearly all 3x3 convs."""
    model = os.path.join(LIGHT_DIR, "light_vgg19.onnx")
    sizes = {}
    for name, options in [("O0", {"opt_level": 0}), ("O3", {}), ("direct", {"winograd": False})]:
        tvmopt.compile(model, **options).export(tmp_path / f"{name}.so")
        sizes[name] = (tmp_path / f"{name}.so").stat().st_size
    assert sizes["direct"] < 1.2 * sizes["O0"]
    assert 2 * sizes["O0"] < sizes["O3"] < 4 * sizes["O0"]


def test_fast_math_stays_within_tolerance_of_onnxruntime():
    """-O3 legalizes exp, erf, tanh, softmax and GELU to polynomial forms (fast_math.py)."""
    from onnx import TensorProto, helper

    from .helpers import make_model

    node = helper.make_node
    model = make_model(
        [node("Erf", ["x"], ["e"]), node("Tanh", ["e"], ["t"]), node("Exp", ["t"], ["p"]),
         node("Softmax", ["p"], ["s"]), node("Gelu", ["s"], ["y"])],
        [("x", TensorProto.FLOAT, [4, 64])],
        [("y", TensorProto.FLOAT, [4, 64])],
        opset=20,
    )  # fmt: skip
    assert_matches_ort(model, tvmopt.compile(model))
    names = "".join(gv.name_hint for gv in _lowered(model, 3).functions)
    assert "fast_erf" in names and "fast_tanh" in names and "gelu_te" in names
    assert "fast" not in "".join(gv.name_hint for gv in _lowered(model, 2).functions)


def test_fast_sigmoid_and_silu_match_onnxruntime_out_to_saturation():
    """-O3 computes sigmoid with fast_exp and SiLU with a rational function (fast_logistic.py),
    which vectorize where the exp intrinsic is a libm call per element; saturated inputs (|x| up
    to 100) go to 0 and 1."""
    import numpy as np
    from onnx import TensorProto, helper

    from .helpers import make_model

    node = helper.make_node
    model = make_model(
        [node("Sigmoid", ["x"], ["s"]), node("Mul", ["x", "s"], ["y"])],
        [("x", TensorProto.FLOAT, [8, 200])],
        [("s", TensorProto.FLOAT, [8, 200]), ("y", TensorProto.FLOAT, [8, 200])],
    )  # fmt: skip
    x = np.linspace(-100, 100, 1600, dtype=np.float32).reshape(8, 200)
    assert_matches_ort(model, tvmopt.compile(model), feeds={"x": x})
    assert "T.sigmoid" not in _lowered(model, 3).script()
    assert "T.sigmoid" in _lowered(model, 2).script()


def _lowered(model, opt_level):
    from tvmopt.frontend.onnx import import_model, prepare

    backend = resolve("llvm")
    pipeline = backend.pipeline(backend.graph_passes(opt_level), opt_level)
    return pipeline(import_model(prepare(model)))
