"""Where a run's time goes: every call the VM makes (each kernel, each of its own builtins),
timed through the VM's instrument hook on a VM of its own, over several runs.

Each row says what the library recorded of the kernel when it was compiled
(backends/kernel_record.py): the schedule rule that scheduled it and its operations per call,
so a slow kernel shows its GFLOP/s (GOP/s for int8) next to its time. `trace` writes the last
run in Chrome's trace format (chrome://tracing, Perfetto), as ONNX Runtime's profiler does.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass

from ._tvm import tvm

NO_OP = 0  # the instrument's answer: run the call as usual (VMInstrumentReturnKind)
VM_BUILTIN = "vm.builtin."


@dataclass(frozen=True)
class KernelTime:
    name: str
    calls: int  # per run
    seconds: float  # per run
    flops: float | None  # per run
    rule: str | None  # None for the VM's own builtins

    @property
    def gflops(self) -> float | None:
        return self.flops / self.seconds / 1e9 if self.flops and self.seconds else None


@dataclass(frozen=True)
class Profile:
    kernels: tuple[KernelTime, ...]  # slowest first
    runs: int
    events: tuple[tuple[str, int, int], ...]  # the last run's calls: (name, start ns, ns)

    @property
    def seconds(self) -> float:
        return sum(kernel.seconds for kernel in self.kernels)

    def table(self, rows: int = 25) -> str:
        total = self.seconds or 1.0
        lines = [f"{'kernel':<48} {'rule':<16} {'calls':>5} {'us':>9} {'share':>6} {'GFLOP/s':>8}"]
        for kernel in self.kernels[:rows]:
            rate = "" if kernel.gflops is None else f"{kernel.gflops:.1f}"
            lines.append(f"{kernel.name[:48]:<48} {(kernel.rule or 'vm')[:16]:<16} "
                         f"{kernel.calls:>5} {kernel.seconds * 1e6:>9.1f} "
                         f"{100 * kernel.seconds / total:>5.1f}% {rate:>8}")  # fmt: skip
        if len(self.kernels) > rows:
            lines.append(f"... and {len(self.kernels) - rows} more")
        lines.append(f"{'all calls, per run':<48} {'':<16} {'':>5} {total * 1e6:>9.1f} "
                     f"({self.runs} runs; the hook adds about 1 us a call)")  # fmt: skip
        return "\n".join(lines)

    def chrome_trace(self) -> dict:
        start = self.events[0][1] if self.events else 0
        events = [{"name": name, "cat": "vm" if name.startswith(VM_BUILTIN) else "kernel",
                   "ph": "X", "ts": (at - start) / 1e3, "dur": ns / 1e3, "pid": 0, "tid": 0}
                  for name, at, ns in self.events]  # fmt: skip
        return {"traceEvents": events, "displayTimeUnit": "ms"}


def profile_vm(module, device, tensors, repeat: int, records: dict) -> Profile:
    """`repeat` runs of `main` on `tensors` (made on `device`), after one that warms up, each
    call timed; `records` is the library's record of its kernels."""
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
    main, runs = vm["main"], []
    for _ in range(repeat + 1):
        events = []
        main(*tensors)
        device.sync()
        runs.append(events)
    return _summary(runs[1:], records)


def _summary(runs: list[list], records: dict) -> Profile:
    totals = defaultdict(lambda: [0, 0])  # name -> [calls, ns] over all runs
    for events in runs:
        for name, _, ns in events:
            totals[name][0] += 1
            totals[name][1] += ns
    kernels = [_kernel_time(name, calls, ns, len(runs), records.get(name))
               for name, (calls, ns) in totals.items()]  # fmt: skip
    kernels.sort(key=lambda kernel: -kernel.seconds)
    return Profile(tuple(kernels), len(runs), tuple(runs[-1]))


def _kernel_time(name, calls, ns, runs, record) -> KernelTime:
    per_call = (record or {}).get("flops")
    rule = (record or {}).get("rule") or (None if name.startswith(VM_BUILTIN) else "?")
    flops = per_call * calls / runs if per_call else None
    return KernelTime(name, calls // runs, ns / runs / 1e9, flops, rule)


def write_trace(profile: Profile, path) -> None:
    from .artifact import atomic_output

    with atomic_output(path) as tmp:
        with open(tmp, "w") as stream:
            json.dump(profile.chrome_trace(), stream)
