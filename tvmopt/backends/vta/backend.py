"""The VTA backend: this CPU (llvm, with "vta" among the target's keys) plus the simulated VTA
accelerator for the int8 conv layers it can run, quantized in VTA's power-of-two recipe
(quantize.py) and partitioned off (partition.py) onto the simulator (runtime.py)."""

from __future__ import annotations

import json

from tvm import relax

from ..._tvm import tvm
from ...errors import OptionError, TargetError
from ..base import Backend
from ..llvm import LLVMBackend, host_target

KEY = "vta"
# After VTA's quantization the graph passes are done: the CPU-only rewrites of -O3 (packed
# weights, epilogue fusion) would reshape the integer layers partition.py looks for.
GRAPH = [("dataflow", relax.transform.ConvertToDataflow)]


def vta_target() -> tvm.target.Target:
    host = dict(host_target().export())
    return tvm.target.Target({**host, "keys": [KEY, "cpu"]})


class VTABackend(LLVMBackend):
    name = "vta"
    aliases = ("vta",)  # this CPU, plus the VTA simulator for the int8 convs it can run
    example = ""
    isa_variants = False  # its layers run on the simulator in Python: no C++ runner to pick

    def __init__(self, target, options=None):
        super().__init__(target, options)
        self.placement = None  # the last build's PartitionReport

    @classmethod
    def named_target(cls, name: str) -> tvm.target.Target:
        return vta_target()

    @classmethod
    def target_from_spec(cls, spec: dict) -> tvm.target.Target:
        if set(spec) != {"kind"}:
            raise TargetError(f"{json.dumps(spec)}: the vta target takes no options yet")
        return vta_target()

    def recipe(self, quantize):
        if quantize is None:
            raise OptionError("target vta runs int8 layers: give quantize='int8' and calib=...")
        return "vta"  # int8 on VTA is VTA's power-of-two recipe

    def build(self, mod, graph, opt_level, database=None):
        """Offload what VTA can run, compile the rest for the CPU."""
        from .partition import partition

        offloaded, self.placement = partition(mod)
        return super().build(offloaded, graph, opt_level, database)

    def record(self) -> dict:
        """Where each layer went (tvmopt vta-report reads it)."""
        return {**super().record(), KEY: {"layers": self.placement.records()}}

    @classmethod
    def before_run(cls) -> None:
        from . import runtime

        runtime.register()  # the packed function its offloaded layers call

    # VTA's programs are generated, not scheduled: there is nothing to tune yet
    check_tunable = Backend.check_tunable
