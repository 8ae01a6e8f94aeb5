"""1x1 convolutions on small feature maps, as matmuls over channels.

    conv2d(x: [N, C, H, W], W: const [O, C, 1, 1])          (stride 1, no padding, W < 32)
      -> reshape(permute_dims(matmul(xᵀ: [N, H*W, C], Wᵀ: const [C, O]), [0, 2, 1]), [N, O, H, W])

The direct NCHW convolution vectorizes along the output row; on 7x7 and 14x14 maps (the late
stages of ResNet and MobileNet, where most 1x1 FLOPs are) a row is a 7- or 14-wide vector. As a
matmul the vector runs over output channels instead, and the weight goes through the packed
matmul kernel. The two transposes are small (a 7x7 map of 960 channels is 188 KB) and fuse
with the layer's bias and activation. Runs before pack_matmul_weights, after quantization (an
int8 layer has its own kernel).
"""

from __future__ import annotations

from tvm import relax
from tvm.relax.dpl import is_const, is_op, wildcard

from ...passes.consts import const, is_float, static_shape, value
from ...passes.rewrite import Rule, rule_pass

MAX_WIDTH = 32  # from this row width up, the direct convolution's vectors are full enough
_x, _w = wildcard(), is_const()


def _is_pointwise(call) -> bool:
    attrs = call.attrs
    layouts = (str(attrs.data_layout), str(attrs.kernel_layout), str(attrs.out_layout))
    return (
        layouts == ("NCHW", "OIHW", "NCHW") and int(attrs.groups) == 1
        and all(int(s) == 1 for s in attrs.strides) and all(int(p) == 0 for p in attrs.padding)
        and all(int(d) == 1 for d in attrs.dilation) and value(call.args[1]).shape[2:] == (1, 1)
    )  # fmt: skip


def _as_matmul(expr, m):
    shape = static_shape(m[_x])
    if shape is None or not is_float(expr) or not _is_pointwise(expr) or shape[3] >= MAX_WIDTH:
        return None
    n, c, h, w = shape
    weight = value(m[_w])
    rows = relax.op.permute_dims(relax.op.reshape(m[_x], (n, c, h * w)), [0, 2, 1])
    product = relax.op.matmul(rows, const(weight.reshape(len(weight), c).T.copy()))
    return relax.op.reshape(relax.op.permute_dims(product, [0, 2, 1]), static_shape(expr))


RULES = [Rule("conv1x1_as_matmul", is_op("relax.nn.conv2d")(_x, _w), _as_matmul)]

Conv1x1AsMatmul = rule_pass("tvmopt.Conv1x1AsMatmul", RULES)
