"""The VTA backend: a simulated FPGA accelerator. `--target vta` is this CPU (llvm, with "vta"
among its keys) plus VTA for the int8 conv layers it can run, quantized in VTA's power-of-two
recipe (quantize.py) and partitioned off (partition.py) onto the simulator (runtime.py)."""

from __future__ import annotations

from tvm import relax

from ..._tvm import tvm
from .. import llvm
from . import runtime  # noqa: F401 - the packed function a VTA library calls

KEY = "vta"
# After VTA's quantization the graph passes are done: the CPU-only rewrites of -O3 (packed
# weights, epilogue fusion) would reshape the integer layers partition.py looks for.
GRAPH = [("dataflow", relax.transform.ConvertToDataflow)]


def vta_target() -> tvm.target.Target:
    host = dict(llvm.host_target().export())
    return tvm.target.Target({**host, "keys": [KEY, "cpu"]})


def is_vta(target) -> bool:
    keys = target.get("keys", []) if isinstance(target, dict) else list(target.keys)
    return KEY in [str(k) for k in keys]


def build(mod, target, opt_level: int, graph=None, database=None):
    """Offload what VTA can run, compile the rest for the CPU; (executable, PartitionReport)."""
    from .partition import partition

    offloaded, report = partition(mod)
    return llvm.build(offloaded, target, opt_level, graph or GRAPH, database), report
