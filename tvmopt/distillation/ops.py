"""ONNX operators as torch functions, one per op and named after it, for the converter.

Each takes the node's attributes (a dict, read with the spec's defaults) and its input tensors
(None for an omitted optional input) and returns a tensor or a tuple of tensors. Shapes flow as
int64 tensors, as in ONNX, and become Python ints only where torch needs them (Reshape, Slice).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from onnx import helper

# -- elementwise ---------------------------------------------------------------------------------


def _binary(fn):
    return lambda attrs, a, b: fn(a, b)


def _unary(fn):
    return lambda attrs, x: fn(x)


def Div(attrs, a, b):
    if not a.is_floating_point() and not b.is_floating_point():
        return torch.div(a, b, rounding_mode="trunc")  # integer Div truncates in ONNX
    return a / b


def Pow(attrs, a, b):
    return torch.pow(a, b.to(a.dtype) if b.is_floating_point() else b)


def Gelu(attrs, x):
    return F.gelu(x, approximate=attrs.get("approximate", "none"))


def Clip(attrs, x, low=None, high=None):
    low = attrs.get("min") if low is None else low
    high = attrs.get("max") if high is None else high
    return torch.clamp(x, min=low, max=high)


def Where(attrs, cond, a, b):
    return torch.where(cond, a, b)


def Cast(attrs, x):
    return x.to(torch_dtype(attrs["to"]))


def LeakyRelu(attrs, x):
    return F.leaky_relu(x, attrs.get("alpha", 0.01))


def HardSigmoid(attrs, x):
    return torch.clamp(attrs.get("alpha", 0.2) * x + attrs.get("beta", 0.5), 0, 1)


# -- matrix products and normalizations ------------------------------------------------------------


def Gemm(attrs, a, b, c=None):
    a = a.transpose(0, 1) if attrs.get("transA", 0) else a
    b = b.transpose(0, 1) if attrs.get("transB", 0) else b
    y = attrs.get("alpha", 1.0) * (a @ b)
    return y if c is None else y + attrs.get("beta", 1.0) * c


def Conv(attrs, x, w, b=None):
    spatial = x.dim() - 2
    pads = attrs.get("pads", [0] * 2 * spatial)
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
        raise NotImplementedError("Conv with auto_pad SAME_* is not supported")
    if pads[:spatial] != pads[spatial:]:  # asymmetric: pad explicitly, last dim first
        x = F.pad(x, [p for i in reversed(range(spatial)) for p in (pads[i], pads[i + spatial])])
        pads = [0] * 2 * spatial
    conv = (F.conv1d, F.conv2d, F.conv3d)[spatial - 1]
    return conv(x, w, b, stride=attrs.get("strides", 1), padding=pads[:spatial],
                dilation=attrs.get("dilations", 1), groups=attrs.get("group", 1))  # fmt: skip


def BatchNormalization(attrs, x, scale, bias, mean, var):
    return F.batch_norm(x, mean, var, scale, bias, False, eps=attrs.get("epsilon", 1e-5))


def LayerNormalization(attrs, x, scale, bias=None):
    axis = attrs.get("axis", -1) % x.dim()
    return F.layer_norm(x, x.shape[axis:], scale, bias, eps=attrs.get("epsilon", 1e-5))


def Softmax(attrs, x):
    return torch.softmax(x, dim=attrs.get("axis", -1))


def LogSoftmax(attrs, x):
    return torch.log_softmax(x, dim=attrs.get("axis", -1))


# -- pooling and reductions ---------------------------------------------------------------------


def GlobalAveragePool(attrs, x):
    return x.mean(dim=tuple(range(2, x.dim())), keepdim=True)


def _pool_args(attrs, spatial):
    pads = attrs.get("pads", [0] * 2 * spatial)
    return dict(kernel_size=attrs["kernel_shape"], stride=attrs.get("strides", 1),
                padding=pads[:spatial], ceil_mode=bool(attrs.get("ceil_mode", 0)))  # fmt: skip


def MaxPool(attrs, x):
    pool = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[x.dim() - 3]
    return pool(x, **_pool_args(attrs, x.dim() - 2))


def AveragePool(attrs, x):
    pool = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[x.dim() - 3]
    exclude = not attrs.get("count_include_pad", 0)
    return pool(x, **_pool_args(attrs, x.dim() - 2), count_include_pad=not exclude)


def _reduce(fn):
    def reduce(attrs, x, axes=None):
        axes = attrs.get("axes") if axes is None else axes.tolist()
        if not axes:
            if attrs.get("noop_with_empty_axes", 0):
                return x
            axes = range(x.dim())
        return fn(x, list(axes), bool(attrs.get("keepdims", 1)))

    return reduce


# -- shapes and indexing ------------------------------------------------------------------------


def Shape(attrs, x):
    dims = list(x.shape)[attrs.get("start", 0) : attrs.get("end", x.dim())]
    return torch.tensor(dims, dtype=torch.int64)


def Reshape(attrs, x, shape):
    dims = shape.tolist()
    if not attrs.get("allowzero", 0):
        dims = [x.shape[i] if d == 0 else d for i, d in enumerate(dims)]
    return x.reshape(dims)


def Flatten(attrs, x):
    axis = attrs.get("axis", 1) % (x.dim() or 1)
    return x.reshape(math.prod(x.shape[:axis]), -1)


def Transpose(attrs, x):
    return x.permute(attrs.get("perm", list(reversed(range(x.dim())))))


def Unsqueeze(attrs, x, axes=None):
    axes = attrs.get("axes") if axes is None else axes.tolist()
    rank = x.dim() + len(axes)
    for axis in sorted(a % rank for a in axes):
        x = x.unsqueeze(axis)
    return x


def Squeeze(attrs, x, axes=None):
    axes = attrs.get("axes") if axes is None else axes.tolist()
    if axes is None:
        return x.squeeze()
    return x.squeeze(tuple(a % x.dim() for a in axes))


def Concat(attrs, *xs):
    return torch.cat(xs, dim=attrs["axis"])


def Gather(attrs, x, indices):
    axis = attrs.get("axis", 0) % x.dim()
    index = torch.where(indices < 0, indices + x.shape[axis], indices).long()
    if axis == 0 and x.dim() == 2:
        return F.embedding(index, x)  # an embedding lookup: its gradient is a sparse-free add
    out = torch.index_select(x, axis, index.reshape(-1))
    return out.reshape(x.shape[:axis] + index.shape + x.shape[axis + 1 :])


def Slice(attrs, x, starts, ends, axes=None, steps=None):
    axes = list(range(len(starts))) if axes is None else axes.tolist()
    steps = [1] * len(axes) if steps is None else steps.tolist()
    index = [slice(None)] * x.dim()
    for start, end, axis, step in zip(starts.tolist(), ends.tolist(), axes, steps, strict=True):
        if step < 0:
            raise NotImplementedError("Slice with negative steps is not supported")
        size = x.shape[axis]
        index[axis] = slice(max(min(start, size), -size), max(min(end, size), -size - 1), step)
    return x[tuple(index)]


def Split(attrs, x, split=None):
    axis = attrs.get("axis", 0)
    sizes = attrs.get("split") if split is None else split.tolist()
    if sizes is None:
        count = attrs["num_outputs"]
        sizes = [-(-x.shape[axis] // count)] * count
        sizes[-1] = x.shape[axis] - sum(sizes[:-1])
    return tuple(torch.split(x, sizes, dim=axis))


def Expand(attrs, x, shape):
    dims = shape.tolist()
    target = torch.broadcast_shapes(tuple(x.shape), tuple(dims))
    return x.expand(target)


def ConstantOfShape(attrs, shape):
    value = attrs.get("value")
    fill = torch.zeros(1) if value is None else value
    return torch.full(shape.tolist(), fill.item(), dtype=fill.dtype)


def Range(attrs, start, limit, delta):
    return torch.arange(start.item(), limit.item(), delta.item(), dtype=start.dtype)


def Identity(attrs, x):
    return x


def Dropout(attrs, x, *rest):
    return x  # inference semantics: the student trains to match the teacher, not to regularize


def Tile(attrs, x, repeats):
    return x.repeat(repeats.tolist())


def torch_dtype(onnx_type: int) -> torch.dtype:
    import numpy as np

    return torch.from_numpy(np.zeros(0, helper.tensor_dtype_to_np_dtype(onnx_type))).dtype


OPS = {
    "Add": _binary(torch.add), "Sub": _binary(torch.sub), "Mul": _binary(torch.mul),
    "Div": Div, "Pow": Pow, "MatMul": _binary(torch.matmul),
    "Equal": _binary(torch.eq), "Less": _binary(torch.lt), "Greater": _binary(torch.gt),
    "And": _binary(torch.logical_and), "Or": _binary(torch.logical_or),
    "Max": lambda attrs, *xs: _fold(torch.maximum, xs),
    "Min": lambda attrs, *xs: _fold(torch.minimum, xs),
    "Not": _unary(torch.logical_not), "Neg": _unary(torch.neg), "Abs": _unary(torch.abs),
    "Sqrt": _unary(torch.sqrt), "Exp": _unary(torch.exp), "Log": _unary(torch.log),
    "Erf": _unary(torch.erf), "Tanh": _unary(torch.tanh), "Sigmoid": _unary(torch.sigmoid),
    "Relu": _unary(torch.relu), "Reciprocal": _unary(torch.reciprocal),
    "Softplus": _unary(F.softplus), "HardSwish": _unary(F.hardswish),
    "Gelu": Gelu, "Clip": Clip, "Where": Where, "Cast": Cast, "LeakyRelu": LeakyRelu,
    "HardSigmoid": HardSigmoid, "Gemm": Gemm, "Conv": Conv,
    "BatchNormalization": BatchNormalization, "LayerNormalization": LayerNormalization,
    "Softmax": Softmax, "LogSoftmax": LogSoftmax, "GlobalAveragePool": GlobalAveragePool,
    "MaxPool": MaxPool, "AveragePool": AveragePool,
    "ReduceMean": _reduce(torch.mean), "ReduceSum": _reduce(torch.sum),
    "ReduceMax": _reduce(lambda x, axes, keep: torch.amax(x, axes, keep)),
    "Shape": Shape, "Reshape": Reshape, "Flatten": Flatten, "Transpose": Transpose,
    "Unsqueeze": Unsqueeze, "Squeeze": Squeeze, "Concat": Concat, "Gather": Gather,
    "Slice": Slice, "Split": Split, "Expand": Expand, "ConstantOfShape": ConstantOfShape,
    "Range": Range, "Identity": Identity, "Dropout": Dropout, "Tile": Tile,
}  # fmt: skip


def _fold(fn, xs):
    out = xs[0]
    for x in xs[1:]:
        out = fn(out, x)
    return out
