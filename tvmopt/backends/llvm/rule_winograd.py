"""The float32 Winograd conv (kernel_winograd.py): padding materialized, the input transform
tile by tile, the a² GEMMs on the panel GEMM (panel_gemm.py), then the output transform with the
layer's bias, residual and activation, tile by tile.

Every transform loop over the tile's a x a (or m x m) elements is unrolled: their coefficients
are then constants, the zero ones drop out, and each step is a 16-channel vector operation."""

from __future__ import annotations

from .kernel_conv_nhwc import PAD
from .kernel_winograd import (
    GEMM,
    INPUT,
    INPUT_ROWS,
    OUTPUT,
    OUTPUT_COLUMNS,
    PRODUCT,
)
from .panel_gemm import schedule_panel_gemm
from .rule_conv_nhwc import Conv2dNHWC
from .schedule_util import (
    block_named,
    inline_epilogue,
    inline_prologue,
    materialize_padding,
    vector_lanes,
    vector_split,
)


class Conv2dWinograd(Conv2dNHWC):
    """The direct NHWC conv's rule, with its tiles, around other blocks."""

    def schedule(self, sch, target) -> bool:
        gemm = block_named(sch, (GEMM,))
        if gemm is None:
            return False
        lanes = vector_lanes(target)
        # no padding block when the input is read in place (unpadded, whole tiles)
        pad = block_named(sch, (PAD,))
        inline_prologue(sch, pad if pad is not None else block_named(sch, (INPUT_ROWS,)))
        materialize_padding(sch, lanes)
        _input_transform(sch, lanes)
        product = block_named(sch, (PRODUCT,))
        schedule_panel_gemm(sch, gemm, product, self.tiles, self.sample, target,
                            panels_outer=False)  # fmt: skip
        _output_transform(sch, lanes)
        return True


def _input_transform(sch, lanes) -> None:
    """Per tile and 16 channels: its a x a rows pass, then its a² outputs, all in registers."""
    transform = block_named(sch, (INPUT,))
    eu, p, c = sch.get_loops(transform)
    c_o, c_i = vector_split(sch, c, lanes)
    sch.reorder(p, c_o, eu, c_i)
    sch.parallel(p)
    rows = block_named(sch, (INPUT_ROWS,))
    sch.compute_at(rows, c_o, preserve_unit_loops=True)
    _unrolled_vectors(sch, rows, 2)
    sch.unroll(eu)
    sch.vectorize(c_i)


def _unrolled_vectors(sch, block, unrolled: int) -> None:
    """The block's innermost loop vectorized, the `unrolled` loops before it unrolled."""
    *_, inner = loops = sch.get_loops(block)
    for loop in loops[-1 - unrolled : -1]:
        sch.unroll(loop)
    sch.vectorize(inner)


def _output_transform(sch, lanes) -> None:
    """Per tile and 16 channels: the columns pass over the a x a products, then the m x m
    outputs with the epilogue, written out where they lie in y."""
    output = block_named(sch, (OUTPUT,))
    last = inline_epilogue(sch, output)
    if last is not None:
        sch.compute_inline(output)
    else:
        last = output
    columns = block_named(sch, (OUTPUT_COLUMNS,))
    tile = int(sch.get(columns).iter_vars[1].dom.extent)
    n, h, w, c = sch.get_loops(last)
    th, hi = sch.split(h, [None, tile])
    tw, wi = sch.split(w, [None, tile])
    c_o, c_i = vector_split(sch, c, lanes)
    sch.reorder(n, th, tw, c_o, hi, wi, c_i)
    sch.parallel(sch.fuse(n, th, tw))
    sch.compute_at(columns, c_o, preserve_unit_loops=True)
    _unrolled_vectors(sch, columns, 2)
    sch.unroll(hi)
    sch.unroll(wi)
    sch.vectorize(c_i)
