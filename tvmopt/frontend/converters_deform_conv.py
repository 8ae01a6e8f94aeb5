"""DeformConv, which TVM's importer lacks: sampled columns, then a grouped matmul.

    DeformConv(X [N, C, H, W], W [OC, C/group, kh, kw], offset, B, mask)
        -> columns [N, C, kh, kw, oh, ow]   (TE: X bilinearly sampled at each tap's shifted point)
        -> W [group, OC/group, K] @ columns [N, group, K, oh*ow] + B -> Y [N, OC, oh, ow]

Tap (ki, kj) of output (i, j) reads X at (i*stride - pad + ki*dilation + dy, likewise for x),
(dy, dx) the tap's offset: offset is [N, offset_group, kh, kw, 2, oh, ow] flattened on its
channels, mask [N, offset_group, kh, kw, oh, ow], channel c using offset group
c // (C / offset_group). The sample is bilinear with zeros outside the image, which is what
onnx's reference gets from GridSample with align_corners. Only 2-D, as in that reference.
"""

from __future__ import annotations

from tvm import relax, te, tirx
from tvm.relax.frontend.onnx import onnx_frontend

op = relax.op


class DeformConv(onnx_frontend.OnnxOpConverter):
    @classmethod
    def _impl_v19(cls, bb, inputs, attr, params):
        x, weight, offset = inputs[:3]
        bias = inputs[3] if len(inputs) > 3 else None
        mask = inputs[4] if len(inputs) > 4 else None
        if len(x.ty.shape) != 4:
            raise NotImplementedError(f"DeformConv is 2-D only; X has shape {x.ty.shape}")
        sampler = _Sampler(
            [int(d) for d in list(weight.ty.shape)[2:]], attr.get("dilations", [1, 1]),
            attr.get("pads", [0, 0, 0, 0]), attr.get("strides", [1, 1]),
            attr.get("offset_group", 1))  # fmt: skip
        taps = [x, offset] if mask is None else [x, offset, mask]
        columns = bb.emit_te(sampler.columns, *taps)
        return _grouped_matmul(bb, columns, weight, bias, attr.get("group", 1))


class _Sampler:
    """Where a DeformConv's kernel taps read its input."""

    def __init__(self, kernel, dilations, pads, strides, offset_group):  # noqa: PLR0913
        self.kernel, self.dilations = kernel, list(dilations)
        self.begins, self.strides = list(pads[:2]), list(strides)
        self.offset_group = int(offset_group)

    def columns(self, x: te.Tensor, offset: te.Tensor, mask: te.Tensor | None = None):
        batch, channels, height, width = (int(d) for d in x.shape)
        out_h, out_w = int(offset.shape[2]), int(offset.shape[3])
        kh, kw = self.kernel
        self.real = "float64" if x.dtype == "float64" else "float32"
        per_group = channels // self.offset_group

        def tap(n, c, ki, kj, i, j):
            slot = (c // per_group * kh + ki) * kw + kj
            y = self._origin(0, i, ki) + offset[n, slot * 2, i, j].astype(self.real)
            z = self._origin(1, j, kj) + offset[n, slot * 2 + 1, i, j].astype(self.real)
            value = _bilinear(x, n, c, y, z, height, width)
            return value if mask is None else value * mask[n, slot, i, j]

        return te.compute((batch, channels, kh, kw, out_h, out_w), tap, name="deform_columns")

    def _origin(self, axis: int, position, tap):
        start = position * self.strides[axis] - self.begins[axis] + tap * self.dilations[axis]
        return start.astype(self.real)


def _bilinear(x, n, c, y, z, height: int, width: int):
    """x[n, c] at the real point (y, z): the four neighbours weighted, zeros outside."""
    top, left = tirx.floor(y), tirx.floor(z)
    dy, dz = y - top, z - left
    top, left = top.astype("int64"), left.astype("int64")
    total = tirx.const(0, x.dtype)
    for row, row_weight in ((top, 1 - dy), (top + 1, dy)):
        for col, col_weight in ((left, 1 - dz), (left + 1, dz)):
            inside = tirx.all(row >= 0, row < height, col >= 0, col < width)
            safe_row = tirx.max(tirx.min(row, height - 1), 0)
            safe_col = tirx.max(tirx.min(col, width - 1), 0)
            weight = (row_weight * col_weight).astype(x.dtype)
            picked = tirx.if_then_else(inside, x[n, c, safe_row, safe_col], tirx.const(0, x.dtype))
            total = total + weight * picked
    return total


def _grouped_matmul(bb, columns, weight, bias, group: int):
    batch, channels, kh, kw, out_h, out_w = (int(d) for d in columns.ty.shape)
    out_channels = int(weight.ty.shape[0])
    depth = channels // group * kh * kw
    columns = op.reshape(columns, (batch, group, depth, out_h * out_w))
    weight = op.reshape(weight, (1, group, out_channels // group, depth))
    y = op.reshape(bb.normalize(op.matmul(weight, columns)), (batch, out_channels, out_h, out_w))
    return y if bias is None else op.add(y, op.reshape(bias, (1, out_channels, 1, 1)))


OPS = {"DeformConv": DeformConv}
