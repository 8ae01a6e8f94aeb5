"""Resize-10's coordinates, kept through onnx's opset upgrade.

    Resize-10(x, scales)  ->  Resize-11(x, roi, scales, coordinate_transformation_mode=asymmetric,
                                        nearest_mode=floor, or ceil when every scale shrinks)

onnx's version converter upgrades Resize-10 (and Upsample, through it) to Resize-11 without a
coordinate_transformation_mode, so the upgraded node reads the new default, half_pixel, and
every linear sample moves. Resize-10 and Upsample map an output position to the input by
dividing it by the scale (asymmetric), and pick nearest by rounding down as Upsample says;
ONNX Runtime rounds up when downsampling, which we follow where every scale downsamples.
Run on the upgraded model of an opset-10-or-older one (`onnx.upgrade_opset`).
"""

from __future__ import annotations

import onnx
from onnx import helper, numpy_helper


def keep_resize_10_coordinates(upgraded: onnx.ModelProto) -> onnx.ModelProto:
    """Say what the upgrade left out on each Resize of a model that was older than opset 11."""
    values = _constant_values(upgraded.graph)
    for node in upgraded.graph.node:
        if node.op_type != "Resize":
            continue
        names = {attribute.name for attribute in node.attribute}
        if "coordinate_transformation_mode" not in names:
            node.attribute.append(
                helper.make_attribute("coordinate_transformation_mode", "asymmetric")
            )
        if "nearest_mode" not in names:
            node.attribute.append(helper.make_attribute("nearest_mode", _rounding(node, values)))
    return upgraded


def _rounding(node: onnx.NodeProto, values: dict) -> str:
    scales = values.get(node.input[2]) if len(node.input) > 2 else None
    shrinks = scales is not None and scales.size and (scales <= 1).all() and (scales < 1).any()
    return "ceil" if shrinks else "floor"


def _constant_values(graph: onnx.GraphProto) -> dict:
    """The graph's initializers and Constant nodes' tensors by name, as numpy arrays."""
    values = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values
