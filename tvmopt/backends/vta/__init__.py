"""The VTA backend (backend.py): a simulated FPGA accelerator. Configuration (config.py), the
instruction set (isa.py), the bit-exact simulator and its cycle model (simulator.py, cycles.py),
VTA's int8 recipe (quantize.py), the partition of a graph between VTA and the CPU
(partition.py), the layer compilers (lower_conv.py, lower_dense.py) and the runtime function
an offloaded layer calls (runtime.py)."""

from .backend import GRAPH, KEY, VTABackend, vta_target

__all__ = ["GRAPH", "KEY", "VTABackend", "vta_target"]
