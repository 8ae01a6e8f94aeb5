"""ConvTranspose with an output_shape attribute, which TVM's converter ignores.

    ConvTranspose(x, w, b; output_shape) -> zero-pad(conv_transpose(x, w; pads >= 0)) + b

The output is output_shape, its first element at `begin` of the full transposed convolution
(stride*(in-1) + dilation*(kernel-1) + 1 long). As the spec says, pads are then ignored: the
total padding (full + output_padding - output_shape) splits with the odd one at the end under
SAME_UPPER, at the start otherwise. A longer output than that sum grows at the end, with zeros
where no input reaches (TVM's op takes only non-negative pads), as ONNX Runtime does by
clamping the total at 0. The reference evaluator instead starts at pads[0] and cannot crop;
ONNX Runtime follows the spec.
"""

from __future__ import annotations

from tvm import relax, tirx
from tvm.relax.frontend.onnx import onnx_frontend

from .converter_values import text

op = relax.op


class ConvTranspose(onnx_frontend.ConvTranspose):
    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        spatial = list(inputs[0].ty.shape)[2:]
        if "output_shape" not in attr or not all(isinstance(d, tirx.IntImm) for d in spatial):
            return super()._impl_v1(bb, inputs, attr, params)
        begins, ends = _pads(attr, [int(d) for d in spatial], _kernel(attr, inputs[1]))
        inner = {key: value for key, value in attr.items()
                 if key not in ("output_shape", "auto_pad", "output_padding")}  # fmt: skip
        inner["pads"] = [max(p, 0) for p in begins + ends]  # a negative end pads after
        y = bb.normalize(super()._impl_v1(bb, [inputs[0], inputs[1], None], inner, params))
        widths = [0, 0, 0, 0]
        for end in ends:
            widths += [0, max(-end, 0)]
        if any(widths):
            y = op.nn.pad(y, widths)
        if len(inputs) > 2 and inputs[2] is not None:
            y = op.add(y, op.reshape(inputs[2], [1, -1] + [1] * len(spatial)))
        return y


def _kernel(attr, weight) -> list[int]:
    if "kernel_shape" in attr:
        return list(attr["kernel_shape"])
    return [int(d) for d in list(weight.ty.shape)[2:]]


def _pads(attr, spatial, kernel):
    """Each spatial axis's padding at its start and its end, negative where the output grows."""
    rank = len(spatial)
    strides = attr.get("strides", [1] * rank)
    dilations = attr.get("dilations", [1] * rank)
    extra = attr.get("output_padding", [0] * rank)
    wanted = list(attr["output_shape"])[-rank:]  # some exporters write N and C too
    upper = text(attr.get("auto_pad", b"NOTSET")) == "SAME_UPPER"
    begins, ends = [], []
    for i, size in enumerate(spatial):
        full = strides[i] * (size - 1) + (kernel[i] - 1) * dilations[i] + 1
        total = max(full + extra[i] - wanted[i], 0)
        begin = total // 2 if upper else total - total // 2
        begins.append(begin)
        ends.append(full - begin - wanted[i])
    return begins, ends


OPS = {"ConvTranspose": ConvTranspose}
