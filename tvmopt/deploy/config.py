"""Build settings for C++ apps, pkg-config style (`tvmopt config --cflags --libs`) and as a CMake
package (`tvmopt config --cmake-dir`, then find_package(tvmopt))."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from ..artifact import atomic_output
from ..cache import cache_dir
from ..version import __version__
from .locations import cpp_source_dir, include_dirs, runtime_libraries

CMAKE_FILES = ("tvmoptConfig.cmake", "tvmoptConfigVersion.cmake")


def cflags() -> str:
    return " ".join(["-std=c++17", *(f"-I{path}" for path in include_dirs())])


def libs() -> str:
    """Link flags; --no-as-needed because the app calls libtvm_runtime only through the functions
    it registers when loaded, so an as-needed linker would drop it."""
    libraries = runtime_libraries("llvm")
    dirs = list(dict.fromkeys(str(path.parent) for path in libraries))
    names = [f"-l{path.stem.removeprefix('lib')}" for path in reversed(libraries)]
    return " ".join(
        [*(f"-L{d}" for d in dirs), f"-Wl,-rpath,{':'.join(dirs)}", "-Wl,--no-as-needed",
         *names, "-ldl"]
    )  # fmt: skip


def cmake_dir(libraries: list[Path] | None = None, directory: Path | None = None) -> Path:
    """Write the CMake package files for this Python environment; return their directory. Given
    `libraries` (libtvm_ffi, libtvm_runtime for another architecture), they go to `directory`."""
    directory = directory or _cmake_dir_location()
    directory.mkdir(parents=True, exist_ok=True)
    values = _cmake_values(libraries or runtime_libraries("llvm"))
    for name in CMAKE_FILES:
        template = (cpp_source_dir() / "cmake" / f"{name}.in").read_text()
        for key, value in values.items():
            template = template.replace(f"@{key}@", value)
        if not (directory / name).is_file() or (directory / name).read_text() != template:
            with atomic_output(directory / name) as tmp:
                Path(tmp).write_text(template)
    return directory


def _cmake_dir_location() -> Path:
    """<prefix>/share/cmake/tvmopt, where CMake looks when the prefix is in CMAKE_PREFIX_PATH;
    a per-environment cache directory when the prefix is read-only."""
    shared = Path(sys.prefix) / "share" / "cmake" / "tvmopt"
    writable = next(p for p in (shared, *shared.parents) if p.exists())
    if os.access(writable, os.W_OK):
        return shared
    tag = hashlib.sha256(sys.prefix.encode()).hexdigest()[:12]
    return cache_dir() / "cmake" / tag


def _cmake_values(libraries: list[Path]) -> dict[str, str]:
    ffi_library, runtime_library = libraries
    tvmopt_include, *ffi_includes = include_dirs()
    return {
        "PYTHON_PREFIX": sys.prefix,
        "VERSION": __version__,
        "VERSION_MAJOR": __version__.split(".")[0],
        "FFI_LIBRARY": str(ffi_library),
        "RUNTIME_LIBRARY": str(runtime_library),
        "FFI_INCLUDE_DIRS": ";".join(str(path) for path in ffi_includes),
        "TVMOPT_INCLUDE_DIR": str(tvmopt_include),
    }
