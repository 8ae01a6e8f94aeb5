"""Our converters for ONNX ops whose TVM import hides them from the graph passes.

    Clip(x, lo, hi)  (constant bounds) -> relax.clip(x, lo, hi)
    Sum(a, b, ...)                      -> add(add(a, b), ...)

TVM imports Clip as two opaque TE calls (maximum, then minimum), which no Relax pattern can
match: a ReLU6 after a convolution cannot fuse into its epilogue and costs a pass over the whole
tensor. With constant bounds, one relax.clip says the same thing in a form fusion sees. Other
Clips (tensor-valued or NaN bounds, which ONNX reads as unbounded) keep TVM's conversion.

TVM imports a variadic Sum as broadcast_to each input, stack them and sum over the stack:
layout passes cannot see a residual add in it (the model zoo's ResNet-50 writes its residual
adds as Sum), and a permute cannot sink through it, so the model stayed NCHW at a third of its
speed. The pairwise adds, TVM's own form for inputs of unknown shape, say the same thing.

Ops TVM's importer lacks have converters of ours too (converters_missing.py,
converters_recurrent.py, converters_sequences.py, converters_image.py, converters_indexing.py,
converters_deform_conv.py, converters_max_pool.py, converters_linalg.py, converters_onehot.py;
converters_ml.py for the ai.onnx.ml domain; converters_contrib_*.py for ONNX Runtime's
com.microsoft ops), and so do ops whose results it got wrong
(converters_corrected.py, converters_batch_norm.py, converters_resize.py, converters_nms.py,
converters_output_types.py, converters_arithmetic.py, converters_conv_transpose.py), and one
keeps symbolic dims symbolic where TVM's import loses them (converters_symbolic.py). TVM's importer
looks its converters up in a module-level table; `our_converters` puts ours in for the duration
of one import.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend

from .._tvm import tvm
from . import (
    converters_arithmetic,
    converters_batch_norm,
    converters_contrib_attention,
    converters_contrib_norm,
    converters_conv_transpose,
    converters_corrected,
    converters_deform_conv,
    converters_image,
    converters_indexing,
    converters_linalg,
    converters_max_pool,
    converters_missing,
    converters_ml,
    converters_nms,
    converters_onehot,
    converters_output_types,
    converters_recurrent,
    converters_resize,
    converters_sequences,
    converters_symbolic,
    converters_weight_blocks,
)


def _constant_bound(expr, default: float) -> float | None:
    if expr is None:
        return default
    if not isinstance(expr, tvm.ir.GenericConst) or expr.value.numpy().size != 1:
        return None
    bound = float(expr.value.numpy().reshape(()))
    return None if np.isnan(bound) else bound


class Clip(onnx_frontend.Clip):
    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        low, high = float(attr.get("min", -np.inf)), float(attr.get("max", np.inf))
        return relax.op.clip(inputs[0], low, high)

    @classmethod
    def _impl_v13(cls, bb, inputs, attr, params):
        low = _constant_bound(inputs[1], -np.inf)
        high = _constant_bound(inputs[2] if len(inputs) > 2 else None, np.inf)
        if low is None or high is None or not _is_float(inputs[0]):
            return super()._impl_v13(bb, inputs, attr, params)
        return relax.op.clip(inputs[0], low, high)


class Sum(onnx_frontend.Sum):
    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        if all(isinstance(x, tvm.ir.GenericConst) for x in inputs):
            return super()._impl_v1(bb, inputs, attr, params)  # folded to one constant
        return cls._impl_dynamic(bb, inputs)


def _is_float(expr) -> bool:
    return str(expr.ty.dtype).startswith(("float", "bfloat"))


OURS = {
    "Clip": Clip,
    "Sum": Sum,
    **converters_missing.OPS,
    **converters_recurrent.OPS,
    **converters_sequences.OPS,
    **converters_corrected.OPS,
    **converters_conv_transpose.OPS,
    **converters_resize.OPS,
    **converters_nms.OPS,
    **converters_image.OPS,
    **converters_deform_conv.OPS,
    **converters_max_pool.OPS,
    **converters_indexing.OPS,
    **converters_linalg.OPS,
    **converters_arithmetic.OPS,
    **converters_onehot.OPS,
    **converters_output_types.OPS,
    **converters_ml.OPS,
    **converters_batch_norm.OPS,
    **converters_symbolic.OPS,
    **converters_weight_blocks.OPS,
    **converters_contrib_attention.OPS,
    **converters_contrib_norm.OPS,
}


@contextmanager
def our_converters():
    original = onnx_frontend._get_convert_map

    def with_ours():
        return {**original(), **OURS}

    onnx_frontend._get_convert_map = with_ours
    try:
        yield
    finally:
        onnx_frontend._get_convert_map = original
