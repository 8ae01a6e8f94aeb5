"""Our converter for ONNX Resize: per axis, the taps of resize_taps.py as Relax ops.

    Resize(x) -> for each resized axis a:  sum_t take(x, indices[:, t], a) * weights[:, t]
                                           (one take for nearest; where(outside, value, y)
                                            for tf_crop_and_resize's extrapolation)

TVM's converter derives each axis's coordinates from output/input where the spec uses the scale
(so downsampling by a scale whose output size rounds came out wrong), and it lacks antialias,
half_pixel_symmetric, the `axes` attribute and keep_aspect_ratio_policy. With static shapes and
constant scales, sizes and roi (initializers in real models; the backend compiles the conformance
tests' inputs in as constants), every mode is a fixed map per axis, computed at import time.
TVM's own resize2d stays for what it gets right and runs faster: 4-D nearest and linear resizes
of the spatial axes with the standard coordinate modes, whose output size is exactly scale times
the input's (the upsampling detection and segmentation models do).
"""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction

import numpy as np
from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend

from .._tvm import tvm
from .converter_values import text
from .resize_taps import AxisResize, Interpolation, Taps, axis_taps, source_coordinates

op = relax.op

TVM_COORDINATE_MODES = ("half_pixel", "pytorch_half_pixel", "asymmetric", "align_corners")


class Resize(onnx_frontend.Resize):
    @classmethod
    def _impl_v10(cls, bb, inputs, attr, params):
        # Resize-10 (x, scales) maps coordinates as ONNX Runtime does: asymmetric, and nearest
        # rounds down when upsampling, up when downsampling
        how = Interpolation(text(attr.get("mode", b"nearest")), "asymmetric")
        scales = _constant_values(inputs[1])
        plans = _axis_plans(_static_shape(inputs[0]), None, scales, None, None, "stretch")
        taps = {axis: axis_taps(plan, replace(how, nearest_mode=_v10_rounding(plan)))
                for axis, plan in plans.items()}  # fmt: skip
        return _resize(bb, inputs[0], taps, 0.0)

    @classmethod
    def _impl_v11(cls, bb, inputs, attr, params):
        x, (roi, scales, sizes) = inputs[0], [_constant_values(e) for e in _optional(inputs, 1, 3)]
        shape = _static_shape(x)
        if shape is None or any(value is _RUNTIME for value in (roi, scales, sizes)):
            return super()._impl_v18(bb, inputs, attr, params)  # run-time values: TVM's
        how = _interpolation(attr)
        policy = text(attr.get("keep_aspect_ratio_policy", b"stretch"))
        plans = _axis_plans(shape, attr.get("axes"), scales, sizes, roi, policy)
        if _tvm_resizes_right(x, plans, how, attr):
            return super()._impl_v18(bb, inputs, attr, params)
        taps = {axis: axis_taps(plan, how) for axis, plan in plans.items()}
        return _resize(bb, x, taps, float(attr.get("extrapolation_value", 0.0)))

    _impl_v18 = _impl_v11  # TVM's class implements v18: ours must shadow it


def _v10_rounding(plan: AxisResize) -> str:
    return "floor" if plan.scale >= 1 else "ceil"


_RUNTIME = object()  # an input whose value is known only when the model runs


def _optional(inputs, first: int, count: int) -> list:
    return [inputs[i] if i < len(inputs) else None for i in range(first, first + count)]


def _constant_values(expr):
    """An input's value as a numpy array: None when absent or empty, _RUNTIME when not constant."""
    if expr is None:
        return None
    if isinstance(expr, relax.ShapeExpr):
        values = [int(v) if isinstance(v, tvm.tirx.IntImm) else None for v in expr.values]
        return _RUNTIME if None in values else np.array(values, dtype=np.int64)
    if not isinstance(expr, tvm.ir.GenericConst):
        return _RUNTIME
    value = expr.value.numpy()
    return value if value.size else None


def _static_shape(x) -> list[int] | None:
    dims = x.ty.shape
    if dims is None or not all(isinstance(d, tvm.tirx.IntImm) for d in dims):
        return None
    return [int(d) for d in dims]


def _interpolation(attr) -> Interpolation:
    return Interpolation(
        mode=text(attr.get("mode", b"nearest")),
        coordinate_mode=text(attr.get("coordinate_transformation_mode", b"half_pixel")),
        nearest_mode=text(attr.get("nearest_mode", b"round_prefer_floor")),
        cubic_coeff_a=float(attr.get("cubic_coeff_a", -0.75)),
        exclude_outside=bool(attr.get("exclude_outside", 0)),
        antialias=bool(attr.get("antialias", 0)),
    )


def _axis_plans(shape, axes, scales, sizes, roi, policy: str) -> dict[int, AxisResize]:
    """Each resized axis's plan, as the spec derives it from scales or sizes (axes, roi and
    keep_aspect_ratio_policy included); axes it leaves as they are are left out."""
    rank = len(shape)
    axes = list(range(rank)) if axes is None else [a % rank for a in axes]
    if (scales is None) == (sizes is None):
        raise ValueError("Resize needs exactly one of scales and sizes")
    if scales is not None:
        factors = [float(s) for s in scales]
        outputs = [int(f * shape[a]) for f, a in zip(factors, axes, strict=True)]
    else:
        factors = [int(n) / shape[a] for n, a in zip(sizes, axes, strict=True)]
        outputs = [int(n) for n in sizes]
        if policy != "stretch":
            factors, outputs = _kept_aspect(shape, axes, factors, policy)
    spans = _roi_spans(roi, len(axes))
    plans = {a: AxisResize(shape[a], n, f, span)
             for a, n, f, span in zip(axes, outputs, factors, spans, strict=True)}  # fmt: skip
    return {a: plan for a, plan in plans.items() if not _is_identity(plan)}


def _kept_aspect(shape, axes, factors, policy: str):
    """keep_aspect_ratio_policy: one scale for all the axes, the smallest or the largest."""
    if policy not in ("not_larger", "not_smaller"):
        raise ValueError(f"unknown keep_aspect_ratio_policy '{policy}'")
    scale = min(factors) if policy == "not_larger" else max(factors)
    outputs = [int(scale * shape[a] + 0.5) for a in axes]  # rounds half up, as the spec says
    return [scale] * len(axes), outputs


def _roi_spans(roi, count: int) -> list[tuple[float, float]]:
    """roi holds the starts of the axes, then their ends."""
    if roi is None:
        return [(0.0, 1.0)] * count
    if roi.size != 2 * count:
        raise ValueError(f"Resize's roi has {roi.size} values, expected {2 * count}")
    return [(float(roi[i]), float(roi[count + i])) for i in range(count)]


def _is_identity(plan: AxisResize) -> bool:
    start, end = plan.roi
    return (plan.output_size == plan.input_size and math.isclose(plan.scale, 1.0)
            and math.isclose(start, 0.0) and math.isclose(end, 1.0))  # fmt: skip


def _tvm_resizes_right(x, plans: dict[int, AxisResize], how: Interpolation, attr) -> bool:
    """Whether TVM's resize2d computes this resize as the spec does (checked against it)."""
    float_input = str(x.ty.dtype).startswith("float")
    return (
        len(x.ty.shape) == 4 and "axes" not in attr and set(plans) <= {2, 3}
        and (how.mode == "nearest" or (how.mode == "linear" and float_input))
        and how.coordinate_mode in TVM_COORDINATE_MODES
        and not how.exclude_outside and not how.antialias
        and text(attr.get("keep_aspect_ratio_policy", b"stretch")) == "stretch"
        # TVM maps coordinates by output/input, right where that is the scale; and it divides
        # by zero to align the corners of an output of one
        and all(plan.output_size == plan.scale * plan.input_size > 1 for plan in plans.values())
        and not (how.mode == "nearest" and _lands_on_a_tie(plans, how))
    )  # fmt: skip


def _lands_on_a_tie(plans: dict[int, AxisResize], how: Interpolation) -> bool:
    """Whether a nearest resize maps some output onto a rounding boundary (x.5 for the round
    modes, an integer for floor and ceil) through a ratio float32 cannot hold. TVM computes
    that coordinate in float32 at run time, and which side of the tie it lands on then depends
    on the CPU's code (on znver4 an FMA puts (3 + 0.5) * 2/7 - 0.5 at 0.50000006: a 2 -> 7
    upsample one row off); our taps decide the tie exactly at import. Ratios of a power of two
    (2x, 4x upsampling) compute exactly and keep TVM's kernel."""
    boundary = 0.5 if how.nearest_mode.startswith("round") else 0.0
    for plan in plans.values():
        if _exact_in_float32(plan, how.coordinate_mode):
            continue
        x, _ = source_coordinates(plan, how.coordinate_mode)
        if np.any(np.isclose(x - np.floor(x), boundary, rtol=0, atol=1e-5)):
            return True
    return False


def _exact_in_float32(plan: AxisResize, coordinate_mode: str) -> bool:
    corners = coordinate_mode == "align_corners"
    ratio = Fraction(plan.input_size - corners, plan.output_size - corners)
    return ratio.denominator & (ratio.denominator - 1) == 0  # a power of two


def _resize(bb, x, taps: dict[int, Taps], extrapolation: float):
    dtype = str(x.ty.dtype)
    weighted = any(t.indices.shape[1] > 1 for t in taps.values())
    # Weighted sums of integers or halves are computed in float32, as the spec computes in float64
    compute = dtype if not weighted or dtype in ("float32", "float64") else "float32"
    y = x if compute == dtype else bb.normalize(op.astype(x, compute))
    for axis, axis_taps_ in taps.items():
        y = bb.normalize(_resize_axis(y, axis, axis_taps_, compute, extrapolation))
    if compute == dtype:
        return y
    if not dtype.startswith(("float", "bfloat")):
        info = np.iinfo(dtype)  # the spec rounds and saturates
        y = op.clip(op.round(y), float(info.min), float(info.max))
    return op.astype(y, dtype)


def _resize_axis(x, axis: int, taps: Taps, dtype: str, extrapolation: float):
    rank, (outputs, count) = len(x.ty.shape), taps.indices.shape
    picked = op.take(x, relax.const(taps.indices.reshape(-1), "int64"), axis=axis)
    trailing = (1,) * (rank - axis - 1)
    if count > 1:
        shape = [int(d) for d in x.ty.shape]
        shape[axis : axis + 1] = [outputs, count]
        weights = taps.weights.reshape((outputs, count, *trailing)).astype(dtype)
        picked = op.multiply(op.reshape(picked, shape), relax.const(weights, dtype))
        picked = op.sum(picked, axis=axis + 1)
    if not taps.outside.any():
        return picked
    outside = relax.const(taps.outside.reshape((outputs, *trailing)), "bool")
    return op.where(outside, relax.const(extrapolation, dtype), picked)


OPS = {"Resize": Resize}
