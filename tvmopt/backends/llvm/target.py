"""CPU targets: this machine's triple and CPU as LLVM names them, and completing partial targets."""

from __future__ import annotations

from ..._tvm import tvm
from ...errors import TargetError

EXAMPLE = '{"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "cortex-a76"}'


def host_triple() -> str:
    """LLVM's host triple, minus the vendor the wheel was built with (conda): the system linker
    and every distribution know the vendor-neutral form."""
    arch, *rest = tvm.target.codegen.llvm_get_system_triple().split("-")
    system = [part for part in rest if part not in ("conda", "unknown", "pc")]
    return "-".join([arch, *system])


def host_cpu() -> str:
    """LLVM's name for this CPU (e.g. znver4, sapphirerapids). 'native' would silently fall back to
    'generic' with the wheel's default triple, losing AVX-512 and VNNI."""
    return tvm.target.codegen.llvm_get_system_cpu()


def host_target() -> tvm.target.Target:
    return tvm.target.Target({"kind": "llvm", "mtriple": host_triple(), "mcpu": host_cpu()})


def portable_host_target() -> tvm.target.Target:
    """This machine's triple for a baseline CPU of its architecture (x86-64-v2: SSE4.2, no AVX):
    the host side of a GPU library is launch glue, and it must load on whatever CPU the GPU
    machine has, not only on the one it was compiled on."""
    triple = host_triple()
    cpu = "x86-64-v2" if triple.startswith("x86_64") else "generic"
    return tvm.target.Target({"kind": "llvm", "mtriple": triple, "mcpu": cpu})


def complete(target: tvm.target.Target) -> tvm.target.Target:
    """Fill in what a partial llvm target leaves out: the host's triple and, on the host's
    architecture, the host's CPU. A cross target without mcpu keeps LLVM's generic CPU."""
    spec = dict(target.export())
    spec.setdefault("mtriple", host_triple())
    if spec.get("mcpu", "native") == "native":
        spec["mcpu"] = host_cpu() if is_host_arch(spec["mtriple"]) else "generic"
    if not tvm.target.codegen.llvm_is_valid_cpu(spec["mcpu"], spec["mtriple"]):
        raise TargetError(f"LLVM does not know CPU '{spec['mcpu']}' for triple '{spec['mtriple']}'")
    return tvm.target.Target(spec)


def is_host_arch(triple: str) -> bool:
    return triple.split("-")[0] == host_triple().split("-")[0]
