"""Skip the 20 s that `import tvm.s_tir.tensor_intrin` costs.

That package's __init__ registers every tensor intrinsic of every GPU and CPU family when it is
imported: 21 s on the 2-core machine we measured, 15 of them CUDA's. MetaSchedule's TuneContext
and its default builder import it unconditionally, though our CPU rules tensorize with our own
intrinsics only (backends/llvm/intrin_int8.py). An empty package with the real path stands in for
it: `import tvm.s_tir.tensor_intrin.x86` (or .cuda) still loads that family when it is needed.
"""

from __future__ import annotations

import sys
import types

PACKAGE = "tvm.s_tir.tensor_intrin"


def load_families_on_demand() -> None:
    if PACKAGE in sys.modules:
        return
    import tvm.s_tir

    real_path = [str(p) for p in tvm.s_tir.__path__]
    package = types.ModuleType(PACKAGE, "Tensor intrinsics, one family per submodule import.")
    package.__path__ = [f"{path}/tensor_intrin" for path in real_path]
    package.__package__ = PACKAGE
    sys.modules[PACKAGE] = package
    tvm.s_tir.tensor_intrin = package
