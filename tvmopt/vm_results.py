"""What a Relax VM call returns, as numpy arrays."""

from __future__ import annotations

import numpy as np

from ._tvm import tvm

CPU = 1  # DLPack's device type of host memory
NUMPY_LACKS = ("float8", "float6", "float4", "bfloat")  # dtypes numpy's DLPack refuses


def leaves(result) -> list[np.ndarray]:
    """VM results are a tensor or (nested) tuples of tensors; outputs are their leaves in order."""
    if isinstance(result, tvm.runtime.Tensor):
        return [host_array(result)]
    return [array for item in result for array in leaves(item)]


def tensor_leaves(result) -> list:
    """The leaves of a VM result as the tensors themselves: no copy, so they can be fed back
    (a decoder's present keys and values are its next step's past)."""
    if isinstance(result, tvm.runtime.Tensor):
        return [result]
    return [tensor for item in result for tensor in tensor_leaves(item)]


def host_array(tensor) -> np.ndarray:
    """A copy of `tensor` in numpy. From host memory through DLPack: about 1 us, where
    Tensor.numpy() takes about 11 us, most of a small model's run (a copy all the same, since an
    output may alias a buffer the next run overwrites). numpy refuses GPU memory and the dtypes
    it lacks (float8, bfloat16, int4) itself: asking it first saves the 2 us that reading the
    dtype's name and the device would cost every call."""
    try:
        return np.from_dlpack(tensor).copy()
    except (RuntimeError, BufferError, TypeError):
        return tensor.numpy()


def numpy_viewable(tensor) -> bool:
    """In host memory, and of a dtype numpy's DLPack reads: it has no float8 (nor bfloat16),
    which take Tensor.numpy() (ml_dtypes arrays)."""
    dtype = str(tensor.dtype)
    return tensor.device.dlpack_device_type() == CPU and not dtype.startswith(NUMPY_LACKS)
