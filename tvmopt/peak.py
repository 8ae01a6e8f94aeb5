"""This machine's measured float32 peak for an ISA, against which `tvmopt run --profile` and
`bench/kernels.py` put each kernel's rate: peak_flops.c (independent FMA chains on every
thread) compiled with the system's C compiler for that ISA and run three times (a neighbour can
only slow a run down, so the best counts). The figure is cached per CPU model, ISA and thread
count; None where it cannot be measured (no compiler, another architecture's code)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path

from .cache import cache_dir

SOURCE = Path(__file__).with_name("peak_flops.c")
RUNS = 3
# each ISA row of backends/llvm/cpu.py as a -march every GCC and Clang know (GCC 12 has no znver4)
ISA_MARCH = {
    "avx512-vnni": "x86-64-v4", "avx512": "x86-64-v4", "avx2-vnni": "x86-64-v3",
    "avx2": "x86-64-v3", "sse4": "x86-64-v2", "neon-dotprod": "armv8.2-a+dotprod",
    "neon": "armv8-a",
}  # fmt: skip


def isa_peak(isa: str, threads: int) -> float | None:
    """The float32 peak of code for `isa` (an ISA row's name) on this machine."""
    march = ISA_MARCH.get(isa)
    return measured_peak(march, threads) if march else None


def measured_peak(march: str, threads: int) -> float | None:
    """GFLOP/s of float32 FMAs on `threads` threads in code built with -march=`march`."""
    key = f"{cpu_model()}|{march}|{threads}"
    cache = cache_dir() / "peak.json"
    known = _read(cache)
    if key not in known:
        peak = _measure(march, threads)
        if peak is None:
            return None
        if not _busy():
            known[key] = peak
            _write(cache, known)
        return peak
    return known[key]


def _busy() -> bool:
    """Whether other work holds the cores: a peak measured beside it is too low to keep (on
    a 2-core host at load 8 one measured 45 of its 231 GFLOP/s, and every later profile read
    that kernels ran at 180% of the peak)."""
    try:
        return os.getloadavg()[0] > (os.cpu_count() or 1)
    except OSError:
        return False


def _measure(march: str, threads: int) -> float | None:
    with tempfile.TemporaryDirectory() as workdir:
        binary = Path(workdir) / "peak"
        flags = ["-O3", f"-march={march}", "-ffp-contract=fast", "-fopenmp"]
        try:
            subprocess.run(["cc", *flags, str(SOURCE), "-o", str(binary)], check=True,
                           capture_output=True)  # fmt: skip
        except (OSError, subprocess.CalledProcessError):
            return None
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        runs = [subprocess.run([str(binary)], env=env, capture_output=True, text=True)
                for _ in range(RUNS)]  # fmt: skip
        rates = [float(run.stdout) for run in runs if run.returncode == 0 and run.stdout.strip()]
        return max(rates) if rates else None


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), or the platform's word for it."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.machine()


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # none yet, or a torn write: measure again


def _write(path: Path, known: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(known, indent=1))
    tmp.replace(path)
