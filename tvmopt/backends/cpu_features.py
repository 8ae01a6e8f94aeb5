"""The CPU features a library's code needs, recorded at compile time and checked against the
running CPU before the library is loaded, so that a library built for another CPU is refused in
one line instead of dying with SIGILL (as TVM's own flow does).

The record names features as Linux's /proc/cpuinfo does (what `grep flags /proc/cpuinfo`
prints, and what the C++ runner checks too): the instruction sets LLVM may emit for the target's
mcpu and mattr, mapped from LLVM's names. System features (virtualization, power states) are not
code's concern and are left out.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from ..errors import ArtifactError

# LLVM's feature name -> /proc/cpuinfo's, per architecture
CPUINFO_NAMES = {
    "x86_64": {
        "sse3": "pni", "ssse3": "ssse3", "sse4.1": "sse4_1", "sse4.2": "sse4_2",
        "popcnt": "popcnt", "avx": "avx", "avx2": "avx2", "fma": "fma", "f16c": "f16c",
        "bmi": "bmi1", "bmi2": "bmi2", "lzcnt": "abm", "movbe": "movbe",
        "avx512f": "avx512f", "avx512bw": "avx512bw", "avx512cd": "avx512cd",
        "avx512dq": "avx512dq", "avx512vl": "avx512vl", "avx512vnni": "avx512_vnni",
        "avx512bf16": "avx512_bf16", "avx512vbmi": "avx512vbmi", "avx512vbmi2": "avx512_vbmi2",
        "avx512bitalg": "avx512_bitalg", "avx512vpopcntdq": "avx512_vpopcntdq",
        "avx512ifma": "avx512ifma", "avx512fp16": "avx512_fp16", "avxvnni": "avx_vnni",
        "amx-tile": "amx_tile", "amx-int8": "amx_int8", "amx-bf16": "amx_bf16",
        "gfni": "gfni", "vaes": "vaes", "vpclmulqdq": "vpclmulqdq", "pclmul": "pclmulqdq",
        "aes": "aes", "sha": "sha_ni", "adx": "adx",
    },
    "aarch64": {
        "neon": "asimd", "dotprod": "asimddp", "i8mm": "i8mm", "fullfp16": "fphp",
        "bf16": "bf16", "sve": "sve", "sve2": "sve2", "crc": "crc32", "aes": "aes",
        "sha2": "sha2", "sha3": "sha3", "lse": "atomics", "rdm": "asimdrdm",
        "fp16fml": "asimdfhm", "rcpc": "lrcpc", "jsconv": "jscvt", "complxnum": "fcma",
    },
}  # fmt: skip
# the x86-64 levels a fleet can target, newest first, with what each needs (cpuinfo names)
X86_LEVELS = (
    ("x86-64-v4", ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl")),
    ("x86-64-v3", ("avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe")),
    ("x86-64-v2", ("pni", "ssse3", "sse4_1", "sse4_2", "popcnt")),
)


def required(arch: str, llvm_features) -> list[str]:
    """The cpuinfo names of the instruction sets among LLVM's `llvm_features`."""
    names = CPUINFO_NAMES.get(arch, {})
    return sorted({names[f] for f in llvm_features if f in names})


def host_arch() -> str:
    import platform

    machine = platform.machine()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine.lower(), machine)


@cache
def host_features() -> frozenset[str] | None:
    """This CPU's features, as /proc/cpuinfo lists them; None where it cannot be read."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return None


def runs_here(record: dict) -> bool:
    """Whether this CPU runs code with the CPU record `record` (LLVMBackend.record): its
    architecture, and every feature it needs where the CPU's can be read."""
    return record["arch"] == host_arch() and not _missing(record)


def _missing(record: dict) -> list[str]:
    """The features `record` needs that this CPU lacks; none where they cannot be read."""
    have = host_features()
    return [] if have is None else [f for f in record["features"] if f not in have]


def check_runs_here(record: dict | None, path) -> None:
    """Refuse, in one line, a library whose code needs what this CPU lacks; nothing is said of
    libraries without the record (written before it) or where the CPU cannot be read."""
    if not record:
        return
    if record["arch"] != host_arch():
        raise ArtifactError(f"{path} was compiled for {record['arch']} ({record['isa']}); this "
                            f"machine is {host_arch()}")  # fmt: skip
    missing = _missing(record)
    if missing:
        raise ArtifactError(
            f"{path} needs CPU features this CPU lacks: {', '.join(missing)} (it was built for "
            f"{record['mcpu']}); compile it with {_suggestion(host_features())}"
        )


def _suggestion(have: frozenset[str]) -> str:
    """A target that runs here: this CPU, or the newest x86-64 level it has, for a fleet."""
    level = next((name for name, needs in X86_LEVELS if all(f in have for f in needs)), None)
    here = "--target llvm (this CPU)"
    if host_arch() != "x86_64" or level is None:
        return here
    return f"{here}, or --target {level} for any CPU with its features"
