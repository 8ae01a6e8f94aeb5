"""Which side of each int8 conv is channels last (sink_permutes.py cancels the permutes between
them; where a neighbour is a float layer that wants NCHW, the kernel transposes as it reads or
writes)."""

from __future__ import annotations

from tvm import relax

from ..consts import static_shape
from ..sink_permutes import POOLS, SINKABLE
from ..uses import bindings, op_name, operands, readers


def conv_layouts(func: relax.Function, convs: set) -> dict:
    """Planned int8 conv call -> (input layout, output layout). A conv writes NHWC when what
    reads its output, through element-wise ops, pools and concats, is convs, a mean or a global
    pool; it reads
    NHWC when its input comes, the same way, from a conv that writes NHWC. Elsewhere (next to
    a float conv: MobileNet's depthwise layers) the kernel transposes as it reads or writes,
    which costs less than a transpose of its own."""
    values = bindings(func)
    read_by, bound_to = readers(func), {value: var for var, value in values.items()}
    memo: dict = {}

    def flows_to_convs(var) -> bool:
        if var not in memo:
            memo[var] = False  # a cycle never proves anything
            memo[var] = bool(read_by.get(var)) and all(
                _reads_channels_last(expr, var) for expr in read_by[var]
            )
        return memo[var]

    def _reads_channels_last(expr, var) -> bool:
        if expr in convs:
            return expr.args[0].same_as(var)
        if op_name(expr) == "relax.mean" or _global_pool(expr):
            return True
        return _passes_layout(expr) and expr in bound_to and flows_to_convs(bound_to[expr])

    layouts, nhwc = {}, set()
    for var, value in values.items():
        if value in convs:
            source = value.args[0]
            out = "NHWC" if flows_to_convs(var) else "NCHW"
            layouts[value] = ("NHWC" if source in nhwc else "NCHW", out)
            if out == "NHWC":
                nhwc.add(var)
        elif _passes_layout(value) and _all_channels_last(value, nhwc):
            nhwc.add(var)
    return layouts


def _global_pool(call) -> bool:
    """A pool to one value per channel (ONNX's GlobalAveragePool, as TVM imports it): like a
    mean, it reads channels last as well, and its 1x1 output needs no transpose after."""
    shape = static_shape(call)
    return op_name(call) in POOLS and shape is not None and tuple(shape[2:]) == (1, 1)


def _passes_layout(call) -> bool:
    """Whether a permute sinks through `call` (sink_permutes.py): element-wise ops, pools,
    concats (of tensors all channels last) and takes along an axis (a channel shuffle)."""
    if op_name(call) == "relax.take":
        return call.attrs.axis is not None
    return op_name(call) in SINKABLE or op_name(call) == "relax.concat"


def _all_channels_last(call, nhwc: set) -> bool:
    tensors = operands(call)  # a concat's are in a tuple
    return bool(tensors) and all(a in nhwc for a in tensors)
