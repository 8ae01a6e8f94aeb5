"""Write bench results as a markdown table, a CSV, PNG plots and a machine description."""

from __future__ import annotations

import csv
import json
import os
import platform
import shutil
import statistics
import subprocess
from pathlib import Path

from ..peak import cpu_model
from .harness import Result

COLUMNS = ["model", "contender", "status", "median_ms", "iqr_ms", "speedup_vs_ort",
           "gflops", "compile_s", "artifact_mib", "note"]  # fmt: skip


def rows(results: list[Result]) -> list[dict]:
    ort = {
        r.model: r.latency.median_ms for r in results if r.contender == "onnxruntime" and r.latency
    }
    return [_row(result, ort.get(result.model)) for result in results]


def _row(result: Result, ort_median: float | None) -> dict:
    row = dict.fromkeys(COLUMNS, "")
    row.update(
        model=result.model, contender=result.contender, status=result.status, note=result.note
    )
    if result.latency is not None:
        median = result.latency.median_ms
        row.update(median_ms=_ms(median), iqr_ms=_ms(_iqr(result.latency.samples_ms)))
        row["gflops"] = f"{result.flops / median / 1e6:.1f}" if result.flops else ""
        row["speedup_vs_ort"] = f"{ort_median / median:.2f}" if ort_median else ""
    if result.compile_seconds is not None:
        row["compile_s"] = f"{result.compile_seconds:.1f}"
    if result.artifact_bytes:
        row["artifact_mib"] = f"{result.artifact_bytes / 2**20:.1f}"
    return row


def _ms(milliseconds: float) -> str:
    """Microseconds still show below 0.1 ms: a per-call overhead model runs in about 0.01."""
    return f"{milliseconds:.3f}" if milliseconds >= 0.1 else f"{milliseconds:.3g}"


def _iqr(samples) -> float:
    if len(samples) < 2:
        return 0.0
    quartiles = statistics.quantiles(samples, n=4)
    return quartiles[2] - quartiles[0]


def markdown(table: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(row[c]) for c in COLUMNS) + " |" for row in table]
    return "\n".join(lines) + "\n"


def write_csv(table: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(table)


def machine() -> dict:
    """What the numbers were measured on: the CPU by name, by LLVM's name and by its ISA (a
    speed holds for that ISA only)."""
    return {
        "cpu": cpu_model(),
        **_isa(),
        "cores_available": len(os.sched_getaffinity(0)),
        "gpu": _gpus(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": _versions(),
    }


VECTOR_FEATURES = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8",
                   "asimd", "asimddp", "i8mm")  # fmt: skip


def _isa() -> dict:
    from ..backends import resolve_target
    from ..backends.cpu_features import host_features
    from ..backends.llvm.cpu import cpu_of

    host = resolve_target(None)
    have = host_features() or frozenset()
    return {"llvm_cpu": str(host.attrs["mcpu"]), "isa": cpu_of(host).isa.name,
            "vector_features": [f for f in VECTOR_FEATURES if f in have]}  # fmt: skip


def _gpus() -> str:
    if not shutil.which("nvidia-smi"):
        return "none"
    query = ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"]
    out = subprocess.run(query, capture_output=True, text=True, timeout=30)
    return out.stdout.strip() or "none"


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("tvmopt", "apache-tvm", "onnxruntime", "onnx", "torch"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found


def write_report(results: list[Result], out_dir: Path, command: str) -> Path:
    """Write results.md, results.csv, machine.json and the plots; return results.md's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    table = rows(results)
    description = machine()
    write_csv(table, out_dir / "results.csv")
    (out_dir / "machine.json").write_text(json.dumps(description, indent=1) + "\n")
    from .plots import plot_latency, plot_speedup

    plot_latency(table, out_dir / "latency.png")
    plot_speedup(table, out_dir / "speedup.png")
    cores, gpu = description["cores_available"], description["gpu"]
    cpu = f"{description['cpu']} ({description['llvm_cpu']}: {description['isa']})"
    header = f"Command: `{command}`\n\nMachine: {cpu}, {cores} cores, GPU: {gpu}\n\n"
    (out_dir / "results.md").write_text(header + markdown(table))
    return out_dir / "results.md"
