"""Converters for ONNX ops TVM's importer lacks that move elements along one axis by a
per-batch-entry offset, as TE gathers over static shapes:

    ReverseSequence(x, sequence_lens)   each batch entry's first sequence_lens[b] time steps
                                        reversed, the rest kept
    TensorScatter(cache, update, w)     update written into the cache along `axis` from
                                        w[b] on (wrapping round the axis in circular mode)

Each output element reads the one input element that lands on it, so neither needs a
scatter; the per-batch lengths and offsets are run-time tensors.
"""

from __future__ import annotations

from tvm import te, tirx
from tvm.relax.frontend.onnx import onnx_frontend

from .converter_values import text


class ReverseSequence(onnx_frontend.OnnxOpConverter):
    @classmethod
    def _impl_v10(cls, bb, inputs, attr, params):
        batch_axis, time_axis = attr.get("batch_axis", 1), attr.get("time_axis", 0)
        return bb.emit_te(_reversed_sequences, inputs[0], inputs[1], batch_axis, time_axis)


def _reversed_sequences(x, lengths, batch_axis: int, time_axis: int):
    def element(*index):
        step, length = index[time_axis], lengths[index[batch_axis]].astype("int64")
        source = tirx.if_then_else(step < length, length - 1 - step, step)
        return x[(*index[:time_axis], source, *index[time_axis + 1:])]

    return te.compute(x.shape, element, name="reverse_sequence")


class TensorScatter(onnx_frontend.OnnxOpConverter):
    @classmethod
    def _impl_v24(cls, bb, inputs, attr, params):
        cache, update = inputs[0], inputs[1]
        offsets = inputs[2] if len(inputs) > 2 else None
        axis = attr.get("axis", -2) % len(cache.ty.shape)
        circular = text(attr.get("mode", b"linear")) == "circular"
        return bb.emit_te(_scattered, cache, update, offsets, axis, circular)


def _scattered(cache, update, offsets, axis: int, circular: bool):  # noqa: PLR0913
    length, written = cache.shape[axis], update.shape[axis]

    def element(*index):
        start = 0 if offsets is None else offsets[index[0]].astype("int64")
        step = index[axis] - start  # which update lands here
        if circular:
            step = tirx.floormod(step, length)
        covered = tirx.all(step >= 0, step < written)
        source = (*index[:axis], tirx.max(tirx.min(step, written - 1), 0), *index[axis + 1:])
        return tirx.if_then_else(covered, update[source], cache[index])

    return te.compute(cache.shape, element, name="tensor_scatter")


OPS = {"ReverseSequence": ReverseSequence, "TensorScatter": TensorScatter}
