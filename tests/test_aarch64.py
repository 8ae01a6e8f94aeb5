"""aarch64 libraries run, not only compile: cross-compiled here, packaged with the aarch64 TVM
runtime and a cross-built tvmopt-run (tvmopt package), run under qemu-user and compared with
ONNX Runtime on this machine. fp32 through NEON's register tiles, and int8 QDQ models, on plain
NEON and on a CPU with the dot product instructions. Needs Debian's g++-aarch64-linux-gnu and
qemu-user, which `make test` installs where it can (tests/install_cross_tools.sh)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import tvmopt
from tvmopt.backends.cpu_features import host_arch
from tvmopt.deploy.package import package

from .helpers import (
    ort_outputs,
    ort_session,
    qdq_samples,
    quantize_with_ort,
    read_outputs,
    residual_cnn,
    save_inputs,
)

ARM = {"kind": "llvm", "mtriple": "aarch64-linux-gnu"}
CPUS = pytest.mark.parametrize("mcpu", ["generic", "neoverse-n1"], ids=["neon", "neon-dotprod"])
SYSROOT = "/usr/aarch64-linux-gnu"  # where Debian's cross packages put aarch64's libc

pytestmark = pytest.mark.skipif(
    host_arch() == "aarch64"
    or shutil.which("qemu-aarch64") is None
    or shutil.which("aarch64-linux-gnu-g++") is None,
    reason="needs an x86_64 host, qemu-user and g++-aarch64-linux-gnu (make test installs them)",
)


def run_under_qemu(compiled, feeds: dict, workdir: Path) -> dict[str, np.ndarray]:
    """Export, package for aarch64 and run the package's tvmopt-run under qemu-aarch64."""
    workdir.mkdir(exist_ok=True)
    compiled.export(workdir / "model.so")
    folder = package(workdir / "model.so", workdir / "package").directory
    save_inputs(workdir / "in", feeds)
    runner = folder / "bin" / "tvmopt-run"
    command = ["qemu-aarch64", runner, folder / "model.so", "--inputs", workdir / "in",
               "--output", workdir / "out", "--repeat", "1"]  # fmt: skip
    env = {**os.environ, "QEMU_LD_PREFIX": SYSROOT}
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    return read_outputs(workdir / "out", [spec.name for spec in compiled.outputs])


@CPUS
def test_fp32_convnet_runs_on_aarch64_and_matches_onnxruntime(mcpu, tmp_path):
    model = residual_cnn()
    feeds = {"x": np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)}
    compiled = tvmopt.compile(model, target={**ARM, "mcpu": mcpu})
    assert compiled.metadata.extra["cpu"]["arch"] == "aarch64"
    actual = run_under_qemu(compiled, feeds, tmp_path)["y"]
    expected = ort_outputs(model, feeds)["y"]
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


@CPUS
def test_int8_qdq_model_runs_on_aarch64_and_matches_onnxruntime(mcpu, tmp_path):
    model = quantize_with_ort(tmp_path, "QDQ", "QUInt8")
    feeds = qdq_samples(1)[0]
    compiled = tvmopt.compile(model, target={**ARM, "mcpu": mcpu})
    assert compiled.metadata.quantization == "int8-qdq"
    actual = run_under_qemu(compiled, feeds, tmp_path / "run")["y"]
    expected = ort_session(model, optimized=False).run(None, feeds)[0]
    # one output quantization step: a tie rounded the other way moves an output by one step
    assert np.abs(actual - expected).max() <= 0.02 * np.abs(expected).max()


def test_package_for_aarch64_holds_aarch64_code_only(tmp_path):
    compiled = tvmopt.compile(residual_cnn(), target=ARM)
    compiled.export(tmp_path / "model.so")
    result = package(tmp_path / "model.so", tmp_path / "package")
    for name in result.files:
        if name != "README.md":
            assert (result.directory / name).read_bytes()[18] == 183, name  # EM_AARCH64
    assert "Needs: Linux aarch64" in (result.directory / "README.md").read_text()
