"""A layout permute sinks through an image resize: the resize then runs channels last.

    resize2d(permute_dims(t, NHWC_TO_NCHW), size, layout="NCHW")
      = permute_dims(resize2d(t, size, layout="NHWC"), NHWC_TO_NCHW)

An FPN's upsampled coarse map, concatenated with a lateral conv's output before the next conv,
then stays channels last between the convs (sink_permutes.py), where the permute before the
resize, and the one before the concat, each cost a transpose of the map.
"""

from __future__ import annotations

from tvm import relax

NHWC_TO_NCHW = (0, 3, 1, 2)
_COPIED = ("method", "coordinate_transformation_mode", "rounding_method", "cubic_alpha",
           "cubic_exclude", "extrapolation_value")  # fmt: skip


def sunk_resize(resize: relax.Call, order: tuple[int, ...] | None, source: relax.Expr):
    """The resize of `source` (read through a permute by `order`) channels last, permuted back;
    None unless the permute takes NHWC to the resize's NCHW."""
    attrs = resize.attrs
    if order != NHWC_TO_NCHW or str(attrs.layout) != "NCHW":
        return None
    copied = {name: getattr(attrs, name) for name in _COPIED}
    roi = tuple(float(bound) for bound in attrs.roi)
    resized = relax.op.image.resize2d(source, resize.args[1], roi, "NHWC",
                                      out_dtype=attrs.out_dtype, **copied)  # fmt: skip
    return relax.op.permute_dims(resized, NHWC_TO_NCHW)
