"""Build the example app, tvmopt-run, for packaged folders: CMake over deploy/cpp with the
runtime libraries looked up in ../lib, for this machine or, with a cross compiler, for another
architecture. Builds are cached by everything that goes into them."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..backends.cpu_features import host_arch
from ..cache import cache_dir
from ..errors import DeployError
from .config import CMAKE_FILES, cmake_dir
from .cross import cross_compiler, runtime_libraries_for
from .locations import cpp_source_dir

RUNNER = "tvmopt-run"


def build_runner(arch: str | None = None) -> Path:
    """The path of a portable tvmopt-run for `arch` (default: this machine's), building it
    unless an identical build is cached."""
    cmake = shutil.which("cmake")
    if cmake is None:
        raise DeployError("cmake not found on PATH; install it (apt or pip install cmake)")
    config, compiler = _toolchain(arch or host_arch())
    runner = cache_dir() / RUNNER / _build_key(config, compiler) / RUNNER
    if not runner.is_file():
        _build(cmake, config, compiler, runner)
    return runner


def _toolchain(arch: str) -> tuple[Path, str]:
    """The CMake package files and the C++ compiler that build for `arch`."""
    if arch == host_arch():
        return cmake_dir(), _host_compiler()
    libraries = runtime_libraries_for(arch)
    return cmake_dir(libraries, libraries[0].parent / "cmake"), cross_compiler(arch)


def _build_key(config: Path, compiler: str) -> str:
    """A digest of the sources, the CMake package files and the compiler's identity."""
    digest = hashlib.sha256()
    source = cpp_source_dir()
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(source)).encode() + path.read_bytes())
    for name in CMAKE_FILES:
        digest.update((config / name).read_bytes())
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout
    digest.update(f"{compiler} {version}".encode())
    return digest.hexdigest()[:16]


def _host_compiler() -> str:
    compiler = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if compiler is None:
        raise DeployError("no C++ compiler found (set CXX or install g++)")
    return compiler


def _build(cmake: str, config: Path, compiler: str, runner: Path) -> None:
    runner.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="build-", dir=runner.parent) as build:
        configure = [cmake, "-S", str(cpp_source_dir()), "-B", build, f"-Dtvmopt_DIR={config}",
                     f"-DCMAKE_CXX_COMPILER={compiler}", "-DCMAKE_BUILD_TYPE=Release",
                     "-DTVMOPT_PORTABLE=ON"]  # fmt: skip
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
