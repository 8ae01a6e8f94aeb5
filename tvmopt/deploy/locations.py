"""Where the files a C++ build needs are: TVM's runtime libraries and headers in the installed
wheels, and tvmopt's own headers. Found without importing TVM (which costs seconds)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import DeployError


def _cudart() -> Path:
    """libtvm_runtime_cuda links the CUDA runtime; the driver is the GPU machine's own."""
    from ..backends.cuda.toolchain import cudart_path

    return cudart_path()


# The runtime libraries a tvmopt library needs, by the backend it records (artifact.Metadata):
# each from the wheel that ships it, or found by a function. A table here, not the backends'
# own attribute, because deploy runs without importing TVM (10-25 s with torch installed).
RUNTIME_LIBRARIES = {
    "llvm": (("tvm_ffi", "libtvm_ffi.so"), ("tvm", "libtvm_runtime.so")),
    "cuda": (("tvm_ffi", "libtvm_ffi.so"), ("tvm", "libtvm_runtime.so"),
             ("tvm", "libtvm_runtime_cuda.so"), _cudart),
}  # fmt: skip


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise DeployError(f"the Python package {name} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def runtime_libraries(backend: str = "llvm") -> list[Path]:
    """The shared libraries a library compiled by `backend` loads at run time."""
    if backend not in RUNTIME_LIBRARIES:
        raise DeployError(
            f"no C++ runtime for backend '{backend}'; supported: {', '.join(RUNTIME_LIBRARIES)}"
        )
    paths = [_located(entry) for entry in RUNTIME_LIBRARIES[backend]]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise DeployError(f"TVM's runtime library is missing from its wheel: {missing[0]}")
    return paths


def _located(entry) -> Path:
    if callable(entry):
        return entry()
    wheel, name = entry
    return package_dir(wheel) / "lib" / name


def include_dirs() -> list[Path]:
    """tvmopt's headers, then tvm_ffi's and DLPack's (all a tvmopt C++ app includes)."""
    ffi = package_dir("tvm_ffi")
    return [cpp_source_dir() / "include", ffi / "include", ffi / "3rdparty" / "dlpack" / "include"]


def cpp_source_dir() -> Path:
    """deploy/cpp: in a checkout (editable install) beside the package, in a wheel inside it."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parents[1] / "deploy" / "cpp", here / "cpp"):
        if (candidate / "include" / "tvmopt" / "model.h").is_file():
            return candidate
    raise DeployError(f"tvmopt's C++ sources are not installed (looked for deploy/cpp near {here})")
