"""Converters for the numeric ops of the ai.onnx.ml domain (classic ML pipelines).

    Binarizer(X, threshold)      -> astype(X > threshold, X.dtype)
    ArrayFeatureExtractor(X, i)  -> take(X, flatten(i), axis=-1)  (a 1-D X as one row)

TVM's importer looks converters up by op_type alone and has none for these. They are the only
ai.onnx.ml ops support.py admits: `OPS` is the list of them; other ai.onnx.ml ops (string or
map-typed ones) stay refused. The importer hands them the model's ai.onnx opset version, not the
ai.onnx.ml one, so each converter has a single `_impl_v1` that serves every version.
"""

from __future__ import annotations

from tvm import relax
from tvm.relax.frontend.onnx.onnx_frontend import OnnxOpConverter

from . import converters_tree_ensemble
from .converter_values import scalar_like

op = relax.op


class Binarizer(OnnxOpConverter):
    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        x = inputs[0]
        above = op.greater(x, scalar_like(x, float(attr.get("threshold", 0.0))))
        return op.astype(above, str(x.ty.dtype))


class ArrayFeatureExtractor(OnnxOpConverter):
    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        x, indices = inputs
        if len(x.ty.shape) == 1:
            x = op.expand_dims(x, 0)  # ONNX Runtime (and the reference) read a vector as one row
        return op.take(x, op.reshape(indices, [-1]), axis=-1)


OPS = {
    "Binarizer": Binarizer,
    "ArrayFeatureExtractor": ArrayFeatureExtractor,
    **converters_tree_ensemble.OPS,
}
