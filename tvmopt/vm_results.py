"""What a Relax VM call returns, as numpy arrays."""

from __future__ import annotations

import numpy as np

from ._tvm import tvm


def leaves(result) -> list[np.ndarray]:
    """VM results are a tensor or (nested) tuples of tensors; outputs are their leaves in order."""
    if isinstance(result, tvm.runtime.Tensor):
        return [result.numpy()]
    return [array for item in result for array in leaves(item)]
