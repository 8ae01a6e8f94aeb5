"""Build the example app, tvmopt-run, for packaged folders: CMake over deploy/cpp with the
runtime libraries looked up in ../lib. Builds are cached by everything that goes into them."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..cache import cache_dir
from ..errors import DeployError
from .config import CMAKE_FILES, cmake_dir
from .locations import cpp_source_dir

RUNNER = "tvmopt-run"


def build_runner() -> Path:
    """The path of a portable tvmopt-run, building it unless an identical build is cached."""
    cmake = shutil.which("cmake")
    if cmake is None:
        raise DeployError("cmake not found on PATH; install it (apt or pip install cmake)")
    config = cmake_dir()
    runner = cache_dir() / RUNNER / _build_key(config) / RUNNER
    if not runner.is_file():
        _build(cmake, config, runner)
    return runner


def _build_key(config: Path) -> str:
    """A digest of the sources, the CMake package files and the compiler's identity."""
    digest = hashlib.sha256()
    source = cpp_source_dir()
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(source)).encode() + path.read_bytes())
    for name in CMAKE_FILES:
        digest.update((config / name).read_bytes())
    digest.update(_compiler_identity().encode())
    return digest.hexdigest()[:16]


def _compiler_identity() -> str:
    compiler = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if compiler is None:
        raise DeployError("no C++ compiler found (set CXX or install g++)")
    result = subprocess.run([compiler, "--version"], capture_output=True, text=True)
    return f"{compiler} {result.stdout}"


def _build(cmake: str, config: Path, runner: Path) -> None:
    runner.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="build-", dir=runner.parent) as build:
        configure = [cmake, "-S", str(cpp_source_dir()), "-B", build, f"-Dtvmopt_DIR={config}",
                     "-DCMAKE_BUILD_TYPE=Release", "-DTVMOPT_PORTABLE=ON"]  # fmt: skip
        for command in (configure, [cmake, "--build", build]):
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                log = runner.parent / "build-failed.log"
                log.write_text(result.stdout + result.stderr)
                raise DeployError(f"building {RUNNER} failed: {_first_error(result)} (log: {log})")
        os.replace(Path(build) / RUNNER, runner)


def _first_error(result: subprocess.CompletedProcess) -> str:
    lines = (result.stdout + result.stderr).splitlines()
    errors = [line.strip() for line in lines if "error" in line.lower()]
    return (errors or lines or ["no output"])[0]
