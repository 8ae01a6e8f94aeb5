"""Import TVM without paying for PyTorch, with one thread per physical core.

tvm_ffi imports torch eagerly when it is installed, which makes `import tvm` cost 10-25 s on the
machines we target; tvmopt moves arrays with numpy and needs none of torch's interop. While TVM
loads, `import torch` is made to fail, unless the caller already imported torch (then it is free).
TVM's thread pool gets one thread per physical core unless the user chose (threads.py).
"""

import sys

from .threads import default_to_physical_cores


def _import_tvm_without_torch():
    if "tvm" in sys.modules or "torch" in sys.modules:
        import tvm

        return tvm
    sys.modules["torch"] = None  # makes `import torch` raise ImportError
    try:
        import tvm
    finally:
        del sys.modules["torch"]
    return tvm


default_to_physical_cores()
tvm = _import_tvm_without_torch()
