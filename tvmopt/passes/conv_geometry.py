"""A conv2d's window over its input, as the channels-last kernels need it at compile time."""

from __future__ import annotations

from dataclasses import dataclass

from tvm import relax

from .consts import static_shape, value


@dataclass(frozen=True)
class ConvGeometry:
    """A conv2d's window over its input; a matmul is a 1x1 window."""

    kernel: tuple[int, int] = (1, 1)
    strides: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)  # top, left: the input is padded by these
    dilation: tuple[int, int] = (1, 1)
    out_hw: tuple[int, int] = (1, 1)

    def pointwise(self) -> bool:
        """1x1, stride 1, unpadded: a GEMM over the positions, whatever the map's shape."""
        return self.kernel == (1, 1) and self.strides == (1, 1) and self.padding == (0, 0)

    def reach(self) -> tuple[int, int]:
        """The rows and columns of the padded input the window reads."""
        return tuple(
            (out - 1) * stride + (k - 1) * dil + 1
            for out, stride, k, dil in zip(
                self.out_hw, self.strides, self.kernel, self.dilation, strict=True
            )
        )


def conv_geometry(call: relax.Call) -> ConvGeometry:
    """The geometry of a static NCHW conv2d call with a constant OIHW weight."""
    attrs, shape = call.attrs, static_shape(call)
    padding = [int(p) for p in attrs.padding]
    return ConvGeometry(
        kernel=tuple(value(call.args[1]).shape[2:]),
        strides=tuple(int(s) for s in attrs.strides),
        padding=(padding[0], padding[1]),
        dilation=tuple(int(d) for d in attrs.dilation),
        out_hw=(int(shape[2]), int(shape[3])),
    )


def nchw_as_nhwc(shape) -> tuple[int, ...]:
    """An NCHW shape's dims in NHWC order."""
    n, c, h, w = (int(d) for d in shape)
    return n, h, w, c
