"""Every CPU, not only this one: one description of the target CPU (backends/llvm/cpu.py) that
kernels are sized from; libraries for a fleet (x86-64-v2/v3/v4) that match ONNX Runtime on this
machine; and a library for a CPU this one is not, refused in one line before it is loaded
(backends/cpu_features.py), never with SIGILL."""

from __future__ import annotations

import pytest

import tvmopt
from tvmopt.backends import resolve, resolve_target
from tvmopt.backends.cpu_features import host_arch, host_features
from tvmopt.backends.llvm.cpu import cpu_of
from tvmopt.cli import main
from tvmopt.inputs import random_inputs

from .helpers import assert_matches_ort

X86 = {"kind": "llvm", "mtriple": "x86_64-linux-gnu"}
ARM = {"kind": "llvm", "mtriple": "aarch64-linux-gnu"}
SAPPHIRE_RAPIDS = {**X86, "mcpu": "sapphirerapids"}


@pytest.mark.parametrize(
    "spec, isa, lanes, accumulators",
    [
        ({**X86, "mcpu": "x86-64-v2"}, "sse4", 4, 12),
        ({**X86, "mcpu": "x86-64-v3"}, "avx2", 8, 12),
        ({**X86, "mcpu": "znver3"}, "avx2", 8, 12),
        ({**X86, "mcpu": "alderlake"}, "avx2-vnni", 8, 12),
        ({**X86, "mcpu": "x86-64-v4"}, "avx512", 16, 15),
        ({**X86, "mcpu": "znver4"}, "avx512-vnni", 16, 15),
        (SAPPHIRE_RAPIDS, "avx512-vnni", 16, 15),
        ({**ARM, "mcpu": "generic"}, "neon", 4, 24),
        ({**ARM, "mcpu": "neoverse-n1"}, "neon-dotprod", 4, 24),
    ],
)
def test_cpu_description_comes_from_the_target(spec, isa, lanes, accumulators):
    """TVM's own vector width says 512 bits for every x86 CPU; ours reads the features."""
    cpu = cpu_of(resolve_target(spec))
    assert (cpu.isa.name, cpu.lanes(), cpu.accumulators) == (isa, lanes, accumulators)
    assert cpu.lanes(8) == 4 * lanes  # bytes per vector


def test_fleet_levels_are_targets():
    assert str(resolve_target("x86-64-v3").attrs["mcpu"]) == "x86-64-v3"
    assert resolve("x86-64-v2").cpu.isa.name == "sse4"
    with pytest.raises(tvmopt.TargetError, match="x86-64-v3"):  # listed among the known ones
        resolve_target("x86-64-v9")


def _runnable_levels() -> list[str]:
    have = host_features() or frozenset()
    levels = ["x86-64-v2", "x86-64-v3"] + (["x86-64-v4"] if "avx512bw" in have else [])
    return levels if host_arch() == "x86_64" else []


@pytest.mark.parametrize("level", ["x86-64-v2", "x86-64-v3", "x86-64-v4"])
def test_a_library_for_a_fleet_matches_onnxruntime(demo_model, level, tmp_path):
    if level not in _runnable_levels():
        pytest.skip(f"this CPU cannot run {level} code")
    compiled = tvmopt.compile(demo_model, target=level)
    record = compiled.metadata.extra["cpu"]
    assert record["mcpu"] == level
    assert ("avx512f" in record["features"]) == (level == "x86-64-v4")
    compiled.export(tmp_path / "fleet.so")
    assert_matches_ort(demo_model, tvmopt.load(tmp_path / "fleet.so"))


@pytest.fixture(scope="module")
def other_cpu_model(demo_model):
    if "amx_int8" in (host_features() or ()) or host_arch() != "x86_64":
        pytest.skip("this CPU runs Sapphire Rapids code")
    return tvmopt.compile(demo_model, target=SAPPHIRE_RAPIDS)


@pytest.fixture(scope="module")
def other_cpu_library(tmp_path_factory, other_cpu_model):
    path = tmp_path_factory.mktemp("spr") / "spr.so"
    other_cpu_model.export(path)
    return path


def test_a_library_for_another_cpu_is_refused_before_loading(other_cpu_library):
    with pytest.raises(tvmopt.ArtifactError) as err:
        tvmopt.load(other_cpu_library)
    message = str(err.value)
    assert "needs CPU features this CPU lacks: amx_bf16, amx_int8, amx_tile" in message
    assert "built for sapphirerapids" in message and "--target llvm (this CPU)" in message
    assert "\n" not in message


def test_a_model_compiled_here_for_another_cpu_is_refused_before_it_runs(other_cpu_model):
    """tvmopt.compile(..., target=another CPU).run() used to die with SIGILL in its first
    kernel (a test built for znver4 did, on a Zen 3)."""
    compiled = other_cpu_model
    with pytest.raises(tvmopt.ArtifactError, match="^the compiled model needs CPU features "
                                                   "this CPU lacks: amx_bf16"):  # fmt: skip
        compiled.run(random_inputs(compiled.inputs))
    with pytest.raises(tvmopt.ArtifactError, match="lacks: amx_bf16"):
        compiled.profile(repeat=1)


def test_cli_run_refuses_it_with_exit_2_and_inspect_describes_it(other_cpu_library, capsys):
    assert main(["run", str(other_cpu_library)]) == 2
    assert "needs CPU features this CPU lacks" in capsys.readouterr().err
    assert main(["inspect", str(other_cpu_library)]) == 0  # read without loading it
    out = capsys.readouterr().out
    assert "cpu: x86_64 sapphirerapids (avx512-vnni); needs " in out and " amx_int8 " in out


def test_a_library_for_another_architecture_is_refused(tmp_path, demo_model):
    from tvmopt.artifact import Metadata

    compiled = tvmopt.compile(demo_model, target={**ARM, "mcpu": "neoverse-n1"})
    assert compiled.metadata.extra["cpu"]["features"][:2] == ["aes", "asimd"]
    record = Metadata.from_json(compiled.metadata.to_json())
    backend = type(resolve(None))
    with pytest.raises(tvmopt.ArtifactError, match="was compiled for aarch64 .* this machine is"):
        backend.before_load(record, "arm.so")


@pytest.mark.parametrize("cut", [100, 20000])
def test_a_truncated_library_is_refused_in_one_line(tmp_path, demo_library, capsys, cut):
    """A copy that did not finish used to die with a bus error (exit 135) when run."""
    truncated = tmp_path / "cut.so"
    truncated.write_bytes(open(demo_library, "rb").read()[:cut])
    assert main(["run", str(truncated)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tvmopt: error: ") and "is truncated" in err and "\n" not in err
