"""Converters for ONNX's image ops TVM's importer lacks, as TE computes over static shapes.

    Col2Im(x [N, C*prod(block), L], image_shape, block_shape)
        -> y [N, C, *image_shape]: each column's block added back at its place in the image

Col2Im is written as a gather rather than a scatter-add: each image element sums, over the
block's positions, the column entry whose block covered it (its offset from the block's
corner a multiple of the stride, the block inside the grid of L). Any number of spatial dims.
"""

from __future__ import annotations

import math

from tvm import te, tirx
from tvm.relax.frontend.onnx import onnx_frontend

from .._tvm import tvm


def _constant_ints(expr, what: str) -> list[int]:
    if not isinstance(expr, tvm.ir.GenericConst):
        raise ValueError(f"{what} must be a constant")
    return [int(v) for v in expr.value.numpy().reshape(-1)]


def _unravel(index, extents: list[int]) -> list:
    """The row-major multi-index of flat `index` in a grid of `extents`."""
    coords = []
    for extent in reversed(extents):
        coords.append(tirx.floormod(index, extent))
        index = tirx.floordiv(index, extent)
    return coords[::-1]


def _ravel(coords: list, extents: list[int]):
    flat = coords[0]
    for coord, extent in zip(coords[1:], extents[1:], strict=True):
        flat = flat * extent + coord
    return flat


class Col2Im(onnx_frontend.OnnxOpConverter):
    @classmethod
    def _impl_v18(cls, bb, inputs, attr, params):
        image = _constant_ints(inputs[1], "Col2Im's image_shape")
        block = _constant_ints(inputs[2], "Col2Im's block_shape")
        rank = len(image)
        geometry = _Geometry(
            image, block, attr.get("dilations", [1] * rank), attr.get("pads", [0] * 2 * rank),
            attr.get("strides", [1] * rank))  # fmt: skip
        return bb.emit_te(geometry.col2im, inputs[0])


class _Geometry:
    """Where a Col2Im's blocks sit in its image."""

    def __init__(self, image, block, dilations, pads, strides):  # noqa: PLR0913
        self.image, self.block, self.dilations = image, block, list(dilations)
        self.begins, self.strides = list(pads[: len(image)]), list(strides)
        self.grid = [(size + begin + end - (dilation * (kernel - 1) + 1)) // stride + 1
                     for size, begin, end, kernel, dilation, stride in zip(
                         image, pads[: len(image)], pads[len(image):], block, dilations, strides,
                         strict=True)]  # fmt: skip

    def col2im(self, x: te.Tensor) -> te.Tensor:
        batch, width = x.shape[0], math.prod(self.block)
        channels = int(x.shape[1]) // width
        k = te.reduce_axis((0, width), name="k")

        def element(n, c, *position):
            covered, column = self._column(position, _unravel(k, self.block))
            value = x[n, c * width + k, column]
            return te.sum(tirx.if_then_else(covered, value, tirx.const(0, x.dtype)), axis=k)

        return te.compute((batch, channels, *self.image), element, name="col2im")

    def _column(self, position, offsets):
        """Whether the block whose `offsets` land on `position` exists, and its column."""
        covered, cells = tirx.const(True), []
        for pos, offset, begin, dilation, stride, count in zip(
                position, offsets, self.begins, self.dilations, self.strides, self.grid,
                strict=True):  # fmt: skip
            start = pos + begin - offset * dilation  # the block's corner on this axis
            cell = tirx.floordiv(start, stride)
            covered = tirx.all(covered, start >= 0, tirx.floormod(start, stride) == 0,
                               cell < count)  # fmt: skip
            cells.append(tirx.max(tirx.min(cell, count - 1), 0))  # in bounds where not covered
        return covered, _ravel(cells, self.grid)


OPS = {"Col2Im": Col2Im}
