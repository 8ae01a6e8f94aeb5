"""`tvmopt vta-report`: what ran where in a VTA library, and VTA's counters per offloaded layer
for one inference (cycles, GEMM utilization, bytes moved, time at the configured clock)."""

from __future__ import annotations

from .config import DEFAULT, VTAConfig
from .cycles import CycleModel
from .partition import PartitionReport
from .simulator import Counters

HEADER = (f"{'layer':>5}  {'conv':<26} {'device':<6} {'cycles':>10} {'GEMM util':>9} "
          f"{'loaded KiB':>10} {'stored KiB':>10} {'us':>9}")  # fmt: skip


def loaded_kib(c: Counters) -> float:
    return (c.inp_load_nbytes + c.wgt_load_nbytes + c.acc_load_nbytes + c.uop_load_nbytes) / 1024


def report_table(placement: PartitionReport, runs: list[tuple[int, Counters]],
                 config: VTAConfig = DEFAULT) -> str:  # fmt: skip
    """One line per conv layer (counters for those VTA ran), then the totals."""
    model = CycleModel(config)
    by_layer = dict(runs)
    lines = [HEADER]
    for p in placement.layers:
        c = by_layer.get(p.layer)
        if p.device == "vta" and c is not None:
            lines.append(f"{p.layer:>5}  {p.shape:<26} {'vta':<6} {c.cycles:>10,} "
                         f"{c.gemm_utilization:>9.0%} {loaded_kib(c):>10.1f} "
                         f"{c.out_store_nbytes / 1024:>10.1f} "
                         f"{model.seconds(c.cycles) * 1e6:>9.1f}")  # fmt: skip
        else:
            lines.append(f"{p.layer:>5}  {p.shape:<26} {'cpu':<6}  {p.reason}")
    return "\n".join([*lines, _totals(list(by_layer.values()), model, config)])


def _totals(counters: list[Counters], model: CycleModel, config: VTAConfig) -> str:
    cycles = sum(c.cycles for c in counters)
    gemm = sum(c.gemm_counter for c in counters)
    utilization = gemm / cycles if cycles else 0.0
    return (f"total on VTA: {len(counters)} layers, {cycles:,} cycles, GEMM utilization "
            f"{utilization:.0%}, {sum(loaded_kib(c) for c in counters):.1f} KiB loaded, "
            f"{model.seconds(cycles) * 1e3:.3f} ms at {config.clock_mhz:g} MHz")  # fmt: skip
