"""CUDA targets: the GPU architecture given (sm_90) or detected from the GPU that is present."""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache

from ..._tvm import tvm
from ...errors import TargetError, last_line
from ..llvm.target import complete, portable_host_target
from .toolchain import driver_present, enable_codegen

EXAMPLE = '{"kind": "cuda", "arch": "sm_90"}'


def cuda_target(arch: str | None = None, spec: dict | None = None) -> tvm.target.Target:
    """A CUDA target for `arch` (detected when None). Its host is the spec's "host" when given
    (completed like --target llvm), else a baseline CPU of this architecture."""
    spec = {**(spec or {}), "kind": "cuda"}
    arch = arch or spec.get("arch") or detected_arch()
    check_arch(arch)
    spec["arch"] = arch
    host = spec.pop("host", None)
    # every CUDA GPU since sm_20 allows these; MetaSchedule's GPU rules need them stated
    spec.setdefault("max_threads_per_block", 1024)
    spec.setdefault("max_shared_memory_per_block", 48 * 1024)
    try:
        return tvm.target.Target(spec, host=_host(host))
    except Exception as err:  # noqa: BLE001 - TVM reports bad keys with several error types
        raise TargetError(f"invalid CUDA target {spec}: {last_line(err)}") from None


def _host(host) -> tvm.target.Target:
    if host is None:
        return portable_host_target()
    return complete(tvm.target.Target(host))


def detected_arch() -> str:
    """sm_XY of GPU 0; TVM itself would silently fall back to sm_50."""
    if driver_present():
        enable_codegen()
        device = tvm.cuda(0)
        if device.exist:
            return "sm_" + device.compute_version.replace(".", "")
    raise TargetError(
        "no NVIDIA GPU here to detect the CUDA architecture from; give it, e.g. "
        "--target cuda --arch sm_90 (H100), sm_80 (A100), sm_89 (L4)"
    )


def check_arch(arch: str) -> None:
    known = supported_archs()
    if not re.fullmatch(r"sm_\d+[a-z]?", arch) or (known and arch.rstrip("af") not in known):
        listed = ", ".join(known) or "sm_XY"
        raise TargetError(f"unknown CUDA architecture '{arch}'; this nvcc knows: {listed}")


@cache
def supported_archs() -> tuple[str, ...]:
    """What `nvcc --list-gpu-code` lists; empty when there is no nvcc to ask."""
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        return ()
    result = subprocess.run([nvcc, "--list-gpu-code"], capture_output=True, text=True)
    return tuple(result.stdout.split())
