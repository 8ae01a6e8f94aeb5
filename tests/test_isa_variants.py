"""One library for several CPUs (isa_variants.py): the baseline x86-64-v3 code and this CPU's,
the best one chosen when it loads; TVMOPT_MAX_CPU_ISA chooses as an older CPU would."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import tvmopt
from tvmopt.backends import resolve
from tvmopt.backends.cpu_features import host_arch, host_features
from tvmopt.demo import INPUT_NAME, INPUT_SHAPE, build_demo_model
from tvmopt.errors import ArtifactError, OptionError
from tvmopt.isa_variants import MAX_ISA_VARIABLE, choose

from .helpers import assert_matches_ort
from .test_cli import assert_fails_cleanly, cli

pytestmark = pytest.mark.skipif(
    host_arch() != "x86_64" or "avx2" not in (host_features() or ()),
    reason="the baseline is x86-64-v3 code: an x86 CPU with AVX2 runs it",
)


@pytest.fixture(scope="module")
def fat_library(tmp_path_factory):
    path = tmp_path_factory.mktemp("isa") / "fat.so"
    compiled = tvmopt.compile(build_demo_model(), target="x86-64-v3", isa_variants=["llvm"])
    compiled.export(path)
    return compiled, path


def feeds():
    return {INPUT_NAME: np.random.default_rng(0).random(INPUT_SHAPE, dtype=np.float32)}


def test_the_compiled_and_the_loaded_model_run_this_cpus_code(fat_library):
    compiled, path = fat_library
    loaded = tvmopt.load(path)
    here = resolve("llvm").cpu.record()["mcpu"]
    for model in (compiled, loaded):
        assert model.metadata.extra["cpu"]["mcpu"] == here
        assert_matches_ort(build_demo_model(), model, feeds())


def test_an_older_cpu_runs_the_baseline(fat_library, monkeypatch):
    """Capped at x86-64-v2, this CPU's variant (AVX2 at least) is out: the baseline runs,
    whose own code needs AVX2, which this CPU has."""
    _, path = fat_library
    monkeypatch.setenv(MAX_ISA_VARIABLE, "x86-64-v2")
    loaded = tvmopt.load(path)
    assert loaded.metadata.extra["cpu"]["mcpu"] == "x86-64-v3"
    assert [r["section"] for r in loaded.metadata.extra["isa_variants"]] == [".tvmopt.isa.0"]
    assert_matches_ort(build_demo_model(), loaded, feeds())


def test_the_cap_drops_avx512_below_v4(monkeypatch):
    avx512 = {"arch": host_arch(), "features": ["avx2", "avx512f"]}
    monkeypatch.setenv(MAX_ISA_VARIABLE, "x86-64-v3")
    assert choose([avx512]) is None
    monkeypatch.setenv(MAX_ISA_VARIABLE, "x86-64-v9")
    with pytest.raises(ArtifactError, match="x86-64-v9 is not one of x86-64-v4"):
        choose([avx512])


def test_a_loaded_fat_library_exports_the_whole_file(fat_library, tmp_path):
    _, path = fat_library
    tvmopt.load(path).export(tmp_path / "copy.so")
    assert (tmp_path / "copy.so").read_bytes() == path.read_bytes()


def test_variants_for_another_backend_are_refused_before_compiling():
    with pytest.raises(OptionError, match="ISA variants are CPU"):
        tvmopt.compile(build_demo_model(), isa_variants=["vta"])


def test_cli_compiles_inspects_and_refuses_a_bad_variant(capsys, tmp_path):
    onnx.save(build_demo_model(), tmp_path / "demo.onnx")
    out = tmp_path / "demo.so"
    status, _, _ = cli(capsys, "compile", tmp_path / "demo.onnx", "-o", out, "--target",
                       "x86-64-v3", "--isa-variant", "llvm")  # fmt: skip
    assert status == 0
    status, printed, _ = cli(capsys, "inspect", out)
    assert status == 0 and "isa_variants:" in printed and "(section .tvmopt.isa.0)" in printed
    bad = tmp_path / "bad.so"
    status, _, err = cli(capsys, "compile", tmp_path / "demo.onnx", "-o", bad,
                         "--isa-variant", "vta")  # fmt: skip
    assert_fails_cleanly(status, err, "ISA variants are CPU (llvm) libraries", bad)
