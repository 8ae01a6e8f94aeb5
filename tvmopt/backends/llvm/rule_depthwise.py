"""Depthwise conv2d (NCHW, one input channel per group), the layers MobileNet is made of.

    out[n, c, y, x] = sum over ky, kx of pad(in)[n, c, y*s + ky, x*s + kx] * w[c, 0, ky, kx]

Each input channel feeds one output channel only, so the register blocking over output
channels that Conv2dNCHW uses buys no reuse here, and materializing the whole padded input
first triples the memory traffic of a layer that is memory-bound to begin with. Instead each
thread takes whole channels: it pads one channel plane into a buffer that stays in cache, then
walks the output rows with a vector over columns, the kernel taps unrolled around it, and the
epilogue applied to each vector while it is in registers.
"""

from __future__ import annotations

from .schedule_util import (
    CPURule,
    block_named,
    extents,
    inline_epilogue,
    iter_kinds,
    largest_divisor,
    register_accumulator,
    root_blocks,
    vector_lanes,
    vectorized_tail,
)  # fmt: skip

BLOCK = "group_conv2d_nchw"


class DepthwiseConv2dNCHW(CPURule):
    def schedule(self, sch, target) -> bool:
        conv = block_named(sch, (BLOCK,))
        if conv is None or iter_kinds(sch, conv) != "SSSSRRR":
            return False
        n, c, y, x, rc, ky, kx = sch.get_loops(conv)
        if extents(sch, [rc])[0] != 1:  # grouped, not depthwise
            return False
        lanes = vector_lanes(target)
        epilogue = inline_epilogue(sch, conv)
        plane = sch.fuse(n, c)
        _pad_per_channel(sch, plane)  # before the conv's loops change under it
        (width,) = extents(sch, [x])
        xo, xi = sch.split(x, [None, largest_divisor(width, lanes)])
        sch.reorder(y, xo, rc, ky, kx, xi)
        accumulator = register_accumulator(sch, conv)
        sch.reverse_compute_at(accumulator, xo, preserve_unit_loops=True)
        if epilogue is not None:
            sch.reverse_compute_at(epilogue, xo, preserve_unit_loops=True)
        sch.parallel(plane)
        sch.vectorize(xi)  # before the init is split off: vectorizing needs a whole reduction
        sch.unroll(ky)
        sch.unroll(kx)
        vectorized_tail(sch, conv, rc, [accumulator, epilogue])
        return True


def _pad_per_channel(sch, plane) -> None:
    """The padded input, one channel plane at a time, inside the thread that reads it. Its rows
    (width + 2) rarely split into whole vectors; LLVM's own vectorizer, with a remainder loop,
    did as well as an exact TVM split in bench/depthwise.py."""
    for pad in [b for b in root_blocks(sch) if sch.get(b).name_hint == "pad_temp"]:
        sch.compute_at(pad, plane, preserve_unit_loops=True)
