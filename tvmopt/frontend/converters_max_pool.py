"""MaxPool with its Indices output, which TVM's converter drops.

    MaxPool(x) -> (y, indices)
        y       = TVM's max_pool
        indices = over each window, the least row-major tap where x equals y,
                  as n*C*prod(spatial) + c*prod(spatial) + that tap's flat place

The least row-major tap is the first maximum in onnx's scan order (rows, then columns), the
one its reference keeps. storage_order=1 writes a 2-D place column-major (h + w*H). A MaxPool
with one output keeps TVM's conversion.
"""

from __future__ import annotations

import math

from tvm import relax, te, tirx
from tvm.relax.frontend.onnx import onnx_frontend

from .converter_values import text


class MaxPool(onnx_frontend.MaxPool):
    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        values = super()._impl_v1(bb, inputs, dict(attr), params)
        if attr.get("tvm_custom", {}).get("num_outputs", 1) == 1:
            return values
        values = bb.normalize(values)
        windows = _Windows(inputs[0], attr)
        indices = bb.emit_te(windows.argmax, inputs[0], values)
        return relax.Tuple([values, indices])


class _Windows:
    """Where a MaxPool's windows sit in its input."""

    def __init__(self, x, attr):
        self.spatial = [int(d) for d in list(x.ty.shape)[2:]]
        rank = len(self.spatial)
        self.kernel = list(attr["kernel_shape"])
        self.strides = list(attr.get("strides", [1] * rank))
        self.dilations = list(attr.get("dilations", [1] * rank))
        self.begins = _pad_begins(attr, self.spatial, self.kernel, self.strides, self.dilations)
        self.column_major = attr.get("storage_order", 0) == 1 and rank == 2

    def argmax(self, x: te.Tensor, y: te.Tensor) -> te.Tensor:
        taps = [te.reduce_axis((0, k), name=f"k{i}") for i, k in enumerate(self.kernel)]
        size, channels = math.prod(self.spatial), int(x.shape[1])
        least = tirx.const(size, "int64")

        def first_max(n, c, *position):
            inside, safe = self._tap_place(position, taps)
            hit = tirx.all(inside, x[(n, c, *safe)] == y[(n, c, *position)])
            key = tirx.if_then_else(hit, self._row_major(safe), least)
            return te.min(key, axis=taps)

        best = te.compute(y.shape, first_max, name="max_pool_first_max")
        return te.compute(y.shape, lambda n, c, *p: (n.astype("int64") * channels + c) * size
                          + self._stored(best[(n, c, *p)]), name="max_pool_indices")  # fmt: skip

    def _tap_place(self, position, taps):
        """Whether the window's tap lies inside x (not padding), and its place clamped into x."""
        place = [p * s - b + t * d for p, s, b, t, d in zip(
            position, self.strides, self.begins, taps, self.dilations, strict=True)]  # fmt: skip
        bounds = list(zip(place, self.spatial, strict=True))
        inside = tirx.all(*[(q >= 0) & (q < e) for q, e in bounds])
        return inside, [tirx.max(tirx.min(q, e - 1), 0) for q, e in bounds]

    def _row_major(self, place):
        flat = tirx.const(0, "int64")
        for q, extent in zip(place, self.spatial, strict=True):
            flat = flat * extent + q.astype("int64")
        return flat

    def _stored(self, flat):
        if not self.column_major:
            return flat
        height, width = self.spatial
        return tirx.floordiv(flat, width) + tirx.floormod(flat, width) * height


def _pad_begins(attr, spatial, kernel, strides, dilations) -> list[int]:
    """The padding before each spatial axis, auto_pad's SAME as onnx computes it."""
    auto_pad = text(attr.get("auto_pad", b"NOTSET"))
    if auto_pad == "VALID":
        return [0] * len(spatial)
    if auto_pad == "NOTSET":
        return list(attr.get("pads", [0] * 2 * len(spatial)))[: len(spatial)]
    begins = []
    for size, k, s, d in zip(spatial, kernel, strides, dilations, strict=True):
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        begins.append(total // 2 if auto_pad == "SAME_UPPER" else total - total // 2)
    return begins


OPS = {"MaxPool": MaxPool}
