"""Make TVM's CUDA code generator compile kernels with nvcc, with or without a GPU here.

TVM 0.27 compiles CUDA kernels to a fatbin only when its CUDA runtime library is loaded; without
it (no driver: no libcuda.so.1), the library keeps CUDA source that only a Python process with
the runtime could compile at load time, so it cannot run from C++. The runtime library needs the
toolkit's libcudart and the driver's libcuda. Where no driver is installed, a stand-in built from
cuda_stub.c takes its place while compiling: kernels are compiled and nothing can be launched.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib
import os
import shutil
import subprocess
from functools import cache
from pathlib import Path

from ..._tvm import tvm
from ...cache import cache_dir
from ...errors import TargetError

CUDART = "libcudart.so.13"  # the CUDA major version the wheel's libtvm_runtime_cuda links to
RUNTIME_LOADED = "ffi.Module.load_from_bytes.cuda"  # registered by libtvm_runtime_cuda


def toolkit_root() -> Path:
    """The CUDA toolkit: $CUDA_PATH, $CUDA_HOME, /usr/local/cuda, or where nvcc lives."""
    nvcc = shutil.which("nvcc")
    candidates = [os.environ.get("CUDA_PATH"), os.environ.get("CUDA_HOME"), "/usr/local/cuda"]
    candidates += [str(Path(nvcc).resolve().parents[1])] if nvcc else []
    for candidate in filter(None, candidates):
        if (Path(candidate) / "bin" / "nvcc").is_file():
            return Path(candidate)
    raise TargetError("the CUDA toolkit was not found (no nvcc); install it or set CUDA_PATH")


def cudart_path() -> Path:
    root = toolkit_root()
    for lib in ("lib64", "lib", "targets/x86_64-linux/lib"):
        if (root / lib / CUDART).is_file():
            return root / lib / CUDART
    raise TargetError(f"{CUDART} was not found in the CUDA toolkit at {root}")


@cache  # asked before the stand-in is loaded: after that, libcuda.so.1 is the stand-in
def driver_present() -> bool:
    try:
        ctypes.CDLL("libcuda.so.1", mode=ctypes.RTLD_GLOBAL)
    except OSError:
        return False
    return True


def runtime_loaded() -> bool:
    return tvm.get_global_func(RUNTIME_LOADED, allow_missing=True) is not None


@cache
def enable_codegen() -> None:
    """Load TVM's CUDA runtime (with the stand-in driver where there is none) so kernels compile
    to device code; point TVM at the toolkit and nvcc."""
    os.environ.setdefault("CUDA_PATH", str(toolkit_root()))
    os.environ.setdefault("TVM_CUDA_COMPILE_MODE", "nvcc")  # nvrtc needs cuda-bindings
    if not runtime_loaded():
        ctypes.CDLL(str(cudart_path()), mode=ctypes.RTLD_GLOBAL)
        if not driver_present():
            ctypes.CDLL(str(_stub_driver()), mode=ctypes.RTLD_GLOBAL)
        ctypes.CDLL(str(runtime_library()), mode=ctypes.RTLD_GLOBAL)
    importlib.import_module("tvm.support.nvcc")  # registers the compile callback TVM calls


def gpu_missing() -> str | None:
    """Why CUDA libraries cannot run here, or None when a GPU is ready."""
    try:
        gpu_device()
    except TargetError as err:
        return str(err)
    return None


def gpu_device():
    """tvm.cuda(0), or a TargetError saying why a CUDA library cannot run here."""
    if not driver_present():
        raise TargetError("this library runs on an NVIDIA GPU, and there is no NVIDIA driver "
                          "here (libcuda.so.1 not found)")  # fmt: skip
    if not runtime_loaded():
        enable_codegen()
    device = tvm.cuda(0)
    if not device.exist:
        raise TargetError("no NVIDIA GPU is visible here (tvm.cuda(0) does not exist)")
    return device


def runtime_library() -> Path:
    return Path(tvm.__file__).parent / "lib" / "libtvm_runtime_cuda.so"


def _stub_driver() -> Path:
    """libcuda.so.1 built from cuda_stub.c, once, into the cache."""
    source = Path(__file__).with_name("cuda_stub.c")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    target = cache_dir() / "cuda-stub" / digest / "libcuda.so.1"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        compiler = os.environ.get("CC") or shutil.which("cc") or "gcc"
        subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-Wl,-soname,libcuda.so.1", "-o",
                        str(tmp), str(source)], check=True, capture_output=True)  # fmt: skip
        os.replace(tmp, target)
    return target
