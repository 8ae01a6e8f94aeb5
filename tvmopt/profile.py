"""Where a run's time goes: every call the VM makes (each kernel, each of its own builtins),
timed through the VM's instrument hook on a VM of its own, over several runs.

Each row says what the library recorded of the kernel when it was compiled
(backends/kernel_record.py): the schedule rule that scheduled it, its operations per call and
the ONNX nodes it covers, so a slow kernel shows its GFLOP/s (GOP/s for int8) next to its time,
and a float kernel its share of this machine's measured float32 peak for the library's ISA
(peak.py). `trace` writes the last run in Chrome's trace format (chrome://tracing, Perfetto),
as ONNX Runtime's profiler does.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass

from ._tvm import tvm

NO_OP = 0  # the instrument's answer: run the call as usual (VMInstrumentReturnKind)
VM_BUILTIN = "vm.builtin."
NODES_SHOWN = 2  # ONNX node names per table row; the rest are counted


@dataclass(frozen=True)
class KernelTime:
    name: str
    calls: int  # per run
    seconds: float  # per run
    flops: float | None  # per run
    rule: str | None  # None for the VM's own builtins
    nodes: tuple[str, ...] = ()  # the ONNX nodes it covers

    @property
    def gflops(self) -> float | None:
        return self.flops / self.seconds / 1e9 if self.flops and self.seconds else None

    @property
    def int8(self) -> bool:
        return (self.rule or "").startswith("Int8")

    def share_of_peak(self, peak: Peak | None) -> float | None:
        """Its rate against the float32 peak; None for int8 kernels (whose peak differs)."""
        if peak is None or self.gflops is None or self.int8:
            return None
        return self.gflops / peak.gflops


@dataclass(frozen=True)
class Peak:
    """The measured float32 peak of the library's ISA on this machine (peak.py)."""

    gflops: float
    isa: str
    threads: int


@dataclass(frozen=True)
class Profile:
    kernels: tuple[KernelTime, ...]  # slowest first
    runs: int
    events: tuple[tuple[str, int, int], ...]  # the last run's calls: (name, start ns, ns)
    peak: Peak | None = None

    @property
    def seconds(self) -> float:
        return sum(kernel.seconds for kernel in self.kernels)

    def table(self, rows: int = 25) -> str:
        total = self.seconds or 1.0
        lines = [f"{'kernel':<40} {'rule':<14} {'calls':>5} {'us':>9} {'share':>6} "
                 f"{'GFLOP/s':>8} {'peak':>5}  ONNX nodes"]  # fmt: skip
        lines += [self._row(kernel, total) for kernel in self.kernels[:rows]]
        if len(self.kernels) > rows:
            lines.append(f"... and {len(self.kernels) - rows} more")
        lines.append(f"{'all calls, per run':<40} {'':<14} {'':>5} {total * 1e6:>9.1f} "
                     f"({self.runs} runs; the hook adds about 1 us a call)")  # fmt: skip
        lines.append(self._peak_line())
        return "\n".join(lines)

    def _row(self, kernel: KernelTime, total: float) -> str:
        rate = "" if kernel.gflops is None else f"{kernel.gflops:.1f}"
        share = kernel.share_of_peak(self.peak)
        peak = "" if share is None else f"{100 * share:.0f}%"
        return (f"{kernel.name[:40]:<40} {(kernel.rule or 'vm')[:14]:<14} {kernel.calls:>5} "
                f"{kernel.seconds * 1e6:>9.1f} {100 * kernel.seconds / total:>5.1f}% "
                f"{rate:>8} {peak:>5}  {_nodes_text(kernel.nodes)}").rstrip()  # fmt: skip

    def _peak_line(self) -> str:
        if self.peak is None:
            return "peak: not measured here (needs a C compiler; CPU libraries only)"
        threads = f"{self.peak.threads} thread{'s' if self.peak.threads > 1 else ''}"
        return (
            f"peak: {self.peak.gflops:.1f} GFLOP/s, float32 FMAs in {self.peak.isa} code on "
            f"{threads}, measured on this machine (int8 kernels: GOP/s, no peak)"
        )

    def chrome_trace(self) -> dict:
        start = self.events[0][1] if self.events else 0
        nodes = {kernel.name: list(kernel.nodes) for kernel in self.kernels if kernel.nodes}
        events = [{"name": name, "cat": "vm" if name.startswith(VM_BUILTIN) else "kernel",
                   "ph": "X", "ts": (at - start) / 1e3, "dur": ns / 1e3, "pid": 0, "tid": 0,
                   **({"args": {"onnx_nodes": nodes[name]}} if name in nodes else {})}
                  for name, at, ns in self.events]  # fmt: skip
        return {"traceEvents": events, "displayTimeUnit": "ms"}


def profile_vm(module, device, tensors, repeat: int, records: dict, peak=None,  # noqa: PLR0913
               function: str = "main") -> Profile:  # fmt: skip
    """`repeat` runs of `function` (a bucket's, or `main`) on `tensors` (made on `device`),
    after one that warms up, each call timed; `records` is the library's record of its kernels,
    `peak` its ISA's."""
    vm = tvm.relax.VirtualMachine(module, device)
    starts, events = [], []

    def instrument(func, symbol, before_run, ret_value, *args):
        now = time.perf_counter_ns()
        if before_run:
            starts.append(now)
        else:
            begin = starts.pop()
            events.append((str(symbol), begin, now - begin))
        return NO_OP

    vm.set_instrument(instrument)
    main, runs = vm[function], []
    for _ in range(repeat + 1):
        events = []
        main(*tensors)
        device.sync()
        runs.append(events)
    return _summary(runs[1:], records, peak)


def _summary(runs: list[list], records: dict, peak: Peak | None) -> Profile:
    totals = defaultdict(lambda: [0, 0])  # name -> [calls, ns] over all runs
    for events in runs:
        for name, _, ns in events:
            totals[name][0] += 1
            totals[name][1] += ns
    kernels = [_kernel_time(name, calls, ns, len(runs), records.get(name))
               for name, (calls, ns) in totals.items()]  # fmt: skip
    kernels.sort(key=lambda kernel: -kernel.seconds)
    return Profile(tuple(kernels), len(runs), tuple(runs[-1]), peak)


def _kernel_time(name, calls, ns, runs, record) -> KernelTime:
    per_call = (record or {}).get("flops")
    rule = (record or {}).get("rule") or (None if name.startswith(VM_BUILTIN) else "?")
    flops = per_call * calls / runs if per_call else None
    nodes = tuple((record or {}).get("nodes") or ())
    return KernelTime(name, calls // runs, ns / runs / 1e9, flops, rule, nodes)


def _nodes_text(nodes: tuple[str, ...]) -> str:
    shown = ", ".join(nodes[:NODES_SHOWN])
    return f"{shown} (+{len(nodes) - NODES_SHOWN})" if len(nodes) > NODES_SHOWN else shown


def isa_peak(metadata, device) -> Peak | None:
    """The measured peak of the library's ISA where its kernels run on the CPU; else None."""
    from .backends.base import CPU_RECORD
    from .peak import isa_peak as measured

    cpu = metadata.extra.get(CPU_RECORD) or {}
    if device.dlpack_device_type() != tvm.cpu().dlpack_device_type() or "isa" not in cpu:
        return None
    threads = int(tvm.get_global_func("runtime.NumThreads")())
    gflops = measured(cpu["isa"], threads)
    return None if gflops is None else Peak(gflops, cpu["isa"], threads)


def write_trace(profile: Profile, path) -> None:
    from .artifact import atomic_output

    with atomic_output(path) as tmp:
        with open(tmp, "w") as stream:
            json.dump(profile.chrome_trace(), stream)
