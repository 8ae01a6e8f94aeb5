"""--target vta end to end: VTA's recipe, partitioning, the simulator at run time, vta-report.
The VTA build must equal the CPU build of the same recipe bit for bit, and stay close to ONNX
Runtime's float32 result."""

import subprocess
import sys

import numpy as np
import pytest

import tvmopt
from tvmopt.backends.vta import runtime
from tvmopt.demo import INPUT_NAME, INPUT_SHAPE
from tvmopt.errors import OptionError, TargetError

from .helpers import ort_outputs

TVMOPT = [sys.executable, "-m", "tvmopt"]
RNG = np.random.default_rng(3)


def samples(count):
    return [{INPUT_NAME: RNG.standard_normal(INPUT_SHAPE).astype(np.float32)} for _ in range(count)]


@pytest.fixture(scope="module")
def calib():
    return samples(6)


@pytest.fixture(scope="module")
def on_vta(demo_model, calib):
    return tvmopt.compile(demo_model, target="vta", quantize="int8", calib=calib)


def test_vta_build_equals_the_cpu_build_of_its_recipe(demo_model, calib, on_vta):
    on_cpu = tvmopt.compile(demo_model, quantize="vta", calib=calib)
    assert (on_vta.metadata.backend, on_vta.metadata.quantization) == ("vta", "vta")
    assert (on_cpu.metadata.backend, on_cpu.metadata.quantization) == ("llvm", "vta")
    placement = on_vta.metadata.extra["vta"]["layers"]
    assert [p["device"] for p in placement] == ["cpu", "vta"]
    for feeds in samples(3):
        runtime.last_runs.clear()
        vta_out, cpu_out = on_vta.run(feeds)["probs"], on_cpu.run(feeds)["probs"]
        np.testing.assert_array_equal(vta_out, cpu_out)
        assert [layer for layer, _ in runtime.last_runs] == [1]
        reference = ort_outputs(demo_model, feeds)["probs"]
        assert np.abs(vta_out - reference).max() < 0.02  # int8 vs float32 probabilities
        assert vta_out.argmax() == reference.argmax()


def test_compile_run_and_report_from_the_command_line(demo_path, calib, tmp_path):
    calib_dir = tmp_path / "calib"
    calib_dir.mkdir()
    for i, sample in enumerate(calib):
        np.savez(calib_dir / f"{i}.npz", **sample)
    library = tmp_path / "demo_vta.so"
    result = subprocess.run([*TVMOPT, "compile", demo_path, "-o", library, "--target", "vta",
                             "--quantize", "int8", "--calib", calib_dir],
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "target vta" in result.stdout
    run = subprocess.run([*TVMOPT, "run", library, "--repeat", "1"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    report = subprocess.run([*TVMOPT, "vta-report", library], capture_output=True, text=True)
    assert report.returncode == 0, report.stderr
    lines = report.stdout.splitlines()
    assert "3 input channels fill under half of a 16-lane block" in lines[1]
    assert lines[2].split()[:2] == ["1", "16x32x32"] and " vta " in lines[2]
    assert lines[-1].startswith("total on VTA: 1 layers,") and "ms at 100 MHz" in lines[-1]


def test_vta_needs_int8_and_tells_what_it_cannot_do(demo_model, demo_library, tmp_path):
    with pytest.raises(OptionError, match="target vta runs int8 layers"):
        tvmopt.compile(demo_model, target="vta")
    with pytest.raises(TargetError, match="the vta target takes no options yet"):
        tvmopt.compile(demo_model, target={"kind": "vta", "log_block": 3})
    report = subprocess.run([*TVMOPT, "vta-report", demo_library], capture_output=True, text=True)
    assert report.returncode == 2 and "was not compiled for VTA" in report.stderr


def test_vta_libraries_are_not_packaged_for_cpp(on_vta, tmp_path):
    library = tmp_path / "vta.so"
    on_vta.export(library)
    result = subprocess.run([*TVMOPT, "package", library, "-o", tmp_path / "pkg"],
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 2 and "whose simulator runs in Python" in result.stderr
    assert not (tmp_path / "pkg").exists()


@pytest.mark.slow
def test_resnet18_offloads_its_19_convs(tmp_path):
    """The bench ResNet-18: every conv but the first on VTA, bit-identical to the CPU build."""
    from tvmopt.benchmark.models import SUITE, export

    path = export(SUITE["resnet18"], tmp_path)
    calib = [{"input": RNG.standard_normal((1, 3, 224, 224)).astype(np.float32)} for _ in range(2)]
    on_vta = tvmopt.compile(path, target="vta", quantize="int8", calib=calib)
    on_cpu = tvmopt.compile(path, quantize="vta", calib=calib)
    devices = [p["device"] for p in on_vta.metadata.extra["vta"]["layers"]]
    assert devices == ["cpu"] + ["vta"] * 19
    feeds = {"input": RNG.standard_normal((1, 3, 224, 224)).astype(np.float32)}
    vta_out, cpu_out = on_vta.run(feeds), on_cpu.run(feeds)
    name = next(iter(vta_out))
    np.testing.assert_array_equal(vta_out[name], cpu_out[name])
